"""Effects once: a system task's start is stored before it leaves, so after a stop it waits
for its render's kept result instead of running again; one that no render finished runs
again as a marked retry with the same effect id. The system job's pause and parameters are
stored like any job's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from events.effects import EFFECT_ID_ENV, EFFECT_RUN_ENV, Effect
from workers.scheduler.farm import Farm, Registration
from workers.scheduler.pools import Builtins
from workers.scheduler.solver import Solver
from workers.scheduler.states import State
from workers.scheduler.store import Store
from workers.scheduler.sync import FarmStore
from workers.scheduler.systemjob import POST_COMMANDS, SYSTEM_JOB_ID

NOW = 1_000_000.0


def server(folder: Path, now: float = NOW) -> tuple[Farm, FarmStore]:
    """What the scheduler does at its start: the farm, then the system job, from the store."""
    farm = Farm(Builtins(), now)
    farm.reconnect_timeout = 30
    sync = FarmStore(Store(folder), farm)
    sync.restore(now)
    farm.create_system_job(("postcmd", "wakeonlan", "events"), 4, 1800, 1000, now)
    sync.restore_system(now)
    return farm, sync


def executor(farm: Farm, identity: bytes, now: float = NOW) -> Any:
    render = farm.register_render(identity, Registration(name="postcmd@host"), now)
    render.capacity_host, render.max_tasks_host = 10_000, 10
    return render


def final(task: dict[str, Any], status: str = "success") -> dict[str, Any]:
    return {k: task[k] for k in ("job_id", "block_id", "task_id", "attempt")} | {"status": status}


def stop(sync: FarmStore) -> None:
    """A kill -9: what the last pass committed is all that is left."""
    sync.flush()
    sync.store.close()


def test_a_started_post_command_ends_with_its_kept_result_and_does_not_run_again(
    tmp_path: Path,
) -> None:
    farm, sync = server(tmp_path)
    render = executor(farm, b"A")
    farm.queue_system(POST_COMMANDS, "touch /tmp/x", NOW)
    [(_, task)] = Solver(farm).solve(NOW)
    env = task["environment"]
    assert env[EFFECT_RUN_ENV] == "1" and len(env[EFFECT_ID_ENV]) == 32
    stop(sync)  # the start was committed before it left; the kill came before its result

    again, sync2 = server(tmp_path, NOW + 5)
    block = again.jobs[SYSTEM_JOB_ID].blocks[POST_COMMANDS]
    slot = task["task_id"]
    assert block.states[slot] & State.WRC and (SYSTEM_JOB_ID, POST_COMMANDS, slot) in again.wrc
    assert not Solver(again).solve(NOW + 5)  # it waits for its render, it does not run again
    # the executor comes back with the result it kept on disk: that ends the command
    render = executor(again, b"A2", NOW + 6)
    result = again.task_reports(render, [final(task)], NOW + 6)
    assert result.finished and result.close == [[1, POST_COMMANDS, slot, task["attempt"]]]
    assert again.sysjob is not None and again.sysjob.slots[POST_COMMANDS] == {}
    again.refresh(NOW + 100)  # past the reconnect timeout: nothing comes back to run
    assert not Solver(again).solve(NOW + 100)
    stop(sync2)
    assert Store(tmp_path).load_syscommands() == []


def test_a_started_command_no_render_finished_runs_again_as_a_marked_retry(
    tmp_path: Path,
) -> None:
    farm, sync = server(tmp_path)
    executor(farm, b"A")
    farm.queue_system(POST_COMMANDS, "touch /tmp/x", NOW)
    [(_, first)] = Solver(farm).solve(NOW)
    stop(sync)

    again, _ = server(tmp_path, NOW + 5)
    executor(again, b"A2", NOW + 6)  # back, without the task: it was killed with the tree
    again.refresh(NOW + 20)
    assert not Solver(again).solve(NOW + 20)  # within af_task_reconnect_timeout it waits
    again.refresh(NOW + 36)
    [(_, second)] = Solver(again).solve(NOW + 36)
    assert second["command"] == "touch /tmp/x" and second["attempt"] == first["attempt"] + 1
    env = second["environment"]
    assert env[EFFECT_ID_ENV] == first["environment"][EFFECT_ID_ENV]
    assert env[EFFECT_RUN_ENV] == "2"
    assert again.sysjob is not None
    assert any("retry: run 2 of effect" in line for line in again.sysjob.job.log)


def test_new_starts_never_take_the_attempt_of_a_result_kept_from_before(tmp_path: Path) -> None:
    """A render may still hold the result of a command that ended (its close was lost in
    the kill): after the restart it is refused, never taken as a new command's."""
    farm, sync = server(tmp_path)
    render = executor(farm, b"A")
    farm.queue_system(POST_COMMANDS, "first", NOW)
    [(_, task)] = Solver(farm).solve(NOW)
    farm.task_reports(render, [final(task)], NOW)
    stop(sync)  # the command ended and went; its close never reached the render

    again, _ = server(tmp_path, NOW + 5)
    render = executor(again, b"A2", NOW + 5)
    again.queue_system(POST_COMMANDS, "second", NOW + 5)
    [(_, new)] = Solver(again).solve(NOW + 5)
    assert new["attempt"] > task["attempt"]
    stale = again.task_reports(render, [final(task)], NOW + 6)
    assert stale.close and not stale.finished
    assert (
        again.sysjob is not None
        and again.sysjob.slots[POST_COMMANDS][new["task_id"]].command == "second"
    )


def test_the_system_jobs_pause_and_parameters_survive_a_restart(tmp_path: Path) -> None:
    farm, sync = server(tmp_path)
    farm.queue_system(POST_COMMANDS, "touch /tmp/later", NOW)
    job = farm.jobs[SYSTEM_JOB_ID]
    job.paused = True
    farm.dirty_jobs.add(job.id)
    from workers.scheduler import operations as ops

    ops.job_params(farm, job, {"max_running_tasks": 3, "priority": 150}, NOW)
    stop(sync)

    again, _ = server(tmp_path, NOW + 1)
    job = again.jobs[SYSTEM_JOB_ID]
    assert job.paused and job.max_running_tasks == 3 and job.priority == 150
    executor(again, b"A", NOW + 1)
    assert not Solver(again).solve(NOW + 1)  # paused: the queued command waits
    job.paused = False
    again.refresh_job(job, NOW + 2)
    [(_, task)] = Solver(again).solve(NOW + 2)
    assert task["command"] == "touch /tmp/later"


def test_commands_stored_before_effect_ids_get_a_stable_one(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.transaction():
        old = {"id": 7, "block": POST_COMMANDS, "command": "true", "time_queued": 5.5}
        store.save_syscommands([old])
    store.close()
    ids = []
    for _ in range(2):
        farm, sync = server(tmp_path)
        assert farm.sysjob is not None
        ids.append(farm.sysjob.slots[POST_COMMANDS][0].uid)
        sync.store.close()
    assert ids[0] == ids[1] == "7.5.500000"


def test_an_effect_without_ids_from_its_task_is_named_by_its_data() -> None:
    data = json.dumps({"events": ["JOB_DONE"]})
    assert Effect.from_env({}, data) == Effect.from_env({}, data)
    assert Effect.from_env({}, data).run == 1 and not Effect.from_env({}, data).retry
    given = Effect.from_env({EFFECT_ID_ENV: "abc", EFFECT_RUN_ENV: "3"}, data)
    assert given == Effect("abc", 3) and given.retry
    assert given.message_id("studio.example") == "<afanasy-event-abc@studio.example>"
    assert Effect.from_env({EFFECT_RUN_ENV: "x"}, data).run == 1
