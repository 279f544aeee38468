"""Restarts keep every job and task; stale reports change nothing."""

from __future__ import annotations

import signal
import time

import pytest

from broker import protocol as P
from tests.conftest import Farm, submit, wait_for
from tests.integration.test_garbage import RawPeer, header

pytestmark = pytest.mark.integration


def numeric(last: int, command: str = "true") -> dict:
    return {"name": "b", "flags": 1, "frame_first": 1, "frame_last": last, "command": command}


def test_a_farm_of_100_jobs_comes_back_whole_after_a_restart(farm: Farm) -> None:
    farm.start_server()
    ids = [submit(farm, {"name": f"job{n:03d}", "blocks": [numeric(100)]}) for n in range(100)]
    reply = farm.ask(
        {
            "action": {
                "type": "jobs",
                "mask": "job0[0-8].",
                "block_ids": [0],
                "operation": {"type": "skip"},
            }
        }
    )
    assert reply["count"] == 9000
    before = {
        j["id"]: (j["state"], j["tasks_done"]) for j in farm.ask({"get": {"type": "jobs"}})["jobs"]
    }
    assert sum(1 for state, _ in before.values() if "DON" in state) == 90

    assert farm.server is not None
    farm.server.send_signal(signal.SIGTERM)
    farm.server.wait(10)
    farm._client.close()
    farm._client = None
    started = time.monotonic()
    farm.start_server()
    serving = time.monotonic() - started
    after = {
        j["id"]: (j["state"], j["tasks_done"]) for j in farm.ask({"get": {"type": "jobs"}})["jobs"]
    }
    assert after == before and sorted(after) == [1, *ids]  # the system job is id 1
    print(
        f"\nscheduler serving again {serving:.2f} s after afserver started (10,000 tasks, 90 jobs done)"
    )
    # and the ten open jobs run
    farm.start_render("r1")
    wait_for(
        lambda: farm.ask({"get": {"type": "jobs", "ids": [ids[-1]]}})["jobs"][0]["tasks_done"] > 0,
        30,
        "work after the restart",
    )


def test_a_stale_attempt_is_refused_and_changes_nothing(farm: Farm) -> None:
    farm.start_server()
    peer = RawPeer(farm.port)
    try:
        head, reply = peer.ask([header(P.MsgType.RENDER_REGISTER), P.pack_body({"name": "fake"})])
        render_id = reply["id"]
        job = submit(farm, {"name": "fenced", "blocks": [numeric(1, "sleep 30")]})
        # the fake render is the only one: the task is pushed to it
        frames = peer.socket.recv_multipart() if peer.socket.poll(10_000) else None
        assert frames is not None
        start = P.unpack_body(frames[1], 1 << 20)["tasks_start"][0]
        assert start["attempt"] == 1
        key = {"job_id": job, "block_id": 0, "task_id": 0}
        stale = {**key, "attempt": 5, "status": "success"}
        head, reply = peer.ask(
            [header(P.MsgType.RENDER_UPDATE, 8), P.pack_body({"id": render_id, "tasks": [stale]})]
        )
        assert head.type == P.MsgType.RENDER_EVENTS
        (task,) = farm.tasks(job)
        assert task["state"] == "RUN" and task["starts"] == 1
        log = farm.ask({"get": {"type": "renders", "mode": "log", "names": ["fake"]}})["renders"][
            0
        ]["log"]
        assert any("refused a report" in line and "attempt 5" in line for line in log)
        # the refused final is closed for the render once committed (pushed)
        closes = peer.socket.recv_multipart() if peer.socket.poll(5_000) else None
        assert closes is not None and P.unpack_body(closes[1], 1 << 20).get("tasks_close") == [
            [job, 0, 0, 5]
        ]
        # the right attempt is taken
        good = {**key, "attempt": 1, "status": "success"}
        peer.ask(
            [header(P.MsgType.RENDER_UPDATE, 9), P.pack_body({"id": render_id, "tasks": [good]})]
        )
        wait_for(
            lambda: farm.tasks(job)[0]["state"] == "DON", 10, "the current attempt's result taken"
        )
    finally:
        peer.close()
