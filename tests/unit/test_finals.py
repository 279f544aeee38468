"""Final reports put aside by the scheduler's handler and handled by the loop's tick.

Real farm, handler and connection objects (the connection is never connected: replies wait
in its outbox, which is what the tests read)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import zmq

from broker import protocol as P
from broker.workerlink import WorkerLink
from workers.base import WorkerConnection
from workers.scheduler.farm import Farm, Registration
from workers.scheduler.handlers import SchedulerHandler
from workers.scheduler.output import OutputStore
from workers.scheduler.pools import Builtins
from workers.scheduler.solver import Solver
from workers.scheduler.states import State

NOW = 1_000_000.0
RENDER = b"R:r1"


def setup(tmp_path: Path, tasks: int = 2) -> tuple[SchedulerHandler, Farm, list[dict[str, Any]]]:
    farm = Farm(Builtins(), NOW)
    render = farm.register_render(RENDER, Registration(name="r1"), NOW)
    render.capacity_host = 10_000  # room for every task at once
    render.max_tasks_host = tasks
    farm.add_job(
        {"name": "j", "blocks": [{"name": "b", "flags": 1, "frame_first": 1,
                                  "frame_last": tasks, "command": "true"}]},
        "jimmy", "ws", NOW,
    )  # fmt: skip
    started = [task for _, task in Solver(farm).solve(NOW)]
    assert len(started) == tasks
    link = WorkerLink("tcp://127.0.0.1:1", "")  # never connected: replies wait in the outbox
    conn = WorkerConnection(zmq.Context.instance(), link, P.SCHEDULER)
    handler = SchedulerHandler(conn, farm, OutputStore(tmp_path, 1 << 20), clock=lambda: NOW)
    return handler, farm, started


def final(task: dict[str, Any], status: str = "success") -> dict[str, Any]:
    keys = ("job_id", "block_id", "task_id", "attempt")
    return {k: task[k] for k in keys} | {"status": status, "exit_code": 0}


def send(handler: SchedulerHandler, msg_type: int, body: dict[str, Any]) -> dict[str, Any]:
    """One message through the handler; returns the body of the answer it queued."""
    handler.conn.outbox.clear()
    handler.handle(RENDER, P.unpack_header(P.pack_header(msg_type, 7)), body)
    [(client, header, reply)] = handler.conn.outbox
    assert client == RENDER and P.unpack_header(header).request_id == 7
    return P.unpack_body(reply, 1 << 20)


def task_state(farm: Farm, task: dict[str, Any]) -> int:
    return farm.jobs[task["job_id"]].blocks[task["block_id"]].states[task["task_id"]]


def test_a_final_is_answered_at_once_and_counted_by_handle_finals(tmp_path: Path) -> None:
    handler, farm, (first, second) = setup(tmp_path)
    running = final(second) | {"status": "running", "percent": 40}
    reply = send(handler, P.MsgType.RENDER_UPDATE, {"id": 1, "tasks": [final(first), running]})
    assert reply == {"id": 1}
    # the running report is handled now, the final waits: its task still runs
    assert task_state(farm, first) & State.RUN
    assert farm.jobs[second["job_id"]].blocks[0].running[second["task_id"]].percent == 40
    assert len(handler.finals) == 1 and not farm.closes

    assert handler.handle_finals() == 0
    assert task_state(farm, first) & State.DON and not task_state(farm, first) & State.RUN
    assert farm.closes == {1: [[first["job_id"], 0, first["task_id"], first["attempt"]]]}


def test_a_final_sent_again_while_it_waits_is_handled_once(tmp_path: Path) -> None:
    handler, farm, (first, _) = setup(tmp_path)
    for _ in range(3):
        send(handler, P.MsgType.RENDER_UPDATE, {"id": 1, "tasks": [final(first)]})
    assert len(handler.finals) == 1
    handler.handle_finals()
    assert farm.closes[1] == [[first["job_id"], 0, first["task_id"], first["attempt"]]]
    assert farm.counters["reports_refused"] == 0


def test_handle_finals_takes_the_oldest_first_up_to_its_limit(tmp_path: Path) -> None:
    handler, farm, (first, second) = setup(tmp_path)
    send(handler, P.MsgType.RENDER_UPDATE, {"id": 1, "tasks": [final(first, "error")]})
    send(handler, P.MsgType.RENDER_UPDATE, {"id": 1, "tasks": [final(second)]})
    assert handler.handle_finals(1) == 1
    # an error with retries left: ready again, marked as returned after an error
    assert task_state(farm, first) == State.RDY | State.RER
    assert task_state(farm, second) & State.RUN
    assert handler.handle_finals(1) == 0
    assert task_state(farm, second) & State.DON


def test_a_render_leaving_has_its_waiting_finals_counted_first(tmp_path: Path) -> None:
    """Deregistering returns the render's tasks to ready: a final that came before must not
    be overtaken, or a task that succeeded would run again."""
    handler, farm, (first, second) = setup(tmp_path)
    send(handler, P.MsgType.RENDER_UPDATE, {"id": 1, "tasks": [final(first)]})
    assert send(handler, P.MsgType.RENDER_DEREGISTER, {"id": 1}) == {"ok": True}
    assert not handler.finals
    assert task_state(farm, first) & State.DON
    assert task_state(farm, second) & State.RDY  # the one still running went back to ready


def test_a_plain_heartbeat_is_answered_with_the_renders_packed_id(tmp_path: Path) -> None:
    handler, _, (first, _) = setup(tmp_path)
    running = final(first) | {"status": "running", "percent": 10}
    for _ in range(2):  # the second answer comes from the cache, byte for byte the same
        handler.conn.outbox.clear()
        handler.handle(RENDER, P.unpack_header(P.pack_header(P.MsgType.RENDER_UPDATE, 7)),
                       {"id": 1, "tasks": [running]})  # fmt: skip
        [(_, _, reply)] = handler.conn.outbox
        assert reply == P.pack_body({"id": 1})
    # a report on a task the render does not hold: the answer says stop, so it is its own
    stranger = running | {"task_id": 99}
    assert send(handler, P.MsgType.RENDER_UPDATE, {"id": 1, "tasks": [stranger]}) == {
        "id": 1,
        "tasks_stop": [[first["job_id"], 0, 99, first["attempt"]]],
    }
