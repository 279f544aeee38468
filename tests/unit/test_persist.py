"""The farm through its store and back: submissions, task changes, compaction, WRC, re-adoption."""

from __future__ import annotations

import json
from pathlib import Path

from workers.scheduler.farm import Farm, Registration
from workers.scheduler.pools import Builtins
from workers.scheduler.solver import Solver
from workers.scheduler.states import State
from workers.scheduler.store import Store
from workers.scheduler.sync import FarmStore

NOW = 1_000_000.0


def farm_with_store(folder: Path, now: float = NOW) -> tuple[Farm, FarmStore]:
    farm = Farm(Builtins(), now)
    sync = FarmStore(Store(folder), farm)
    sync.restore(now)
    return farm, sync


def submit(farm: Farm, sync: FarmStore, name: str, tasks: int, **extra: object) -> int:
    body = {
        "name": name,
        "blocks": [
            {"name": "b", "flags": 1, "frame_first": 1, "frame_last": tasks, "command": "c @#@"}
        ],
        **extra,
    }
    job = farm.add_job(body, "jimmy", "ws", NOW)
    sync.insert_job(job)
    return job.id


def report(farm: Farm, render_name: str, key: list[int], status: str) -> None:
    render = farm.render_by_name[render_name]
    farm.task_reports(
        render,
        [
            {
                "job_id": key[0],
                "block_id": key[1],
                "task_id": key[2],
                "attempt": key[3],
                "status": status,
            }
        ],
        NOW,
    )


def test_jobs_and_task_states_survive_a_restart(tmp_path: Path) -> None:
    farm, sync = farm_with_store(tmp_path)
    farm.register_render(b"A", Registration(name="r1"), NOW)
    job_id = submit(farm, sync, "render", 5, priority=120, hosts_mask="r")
    done_id = submit(farm, sync, "tiny", 1)
    starts = Solver(farm).solve(NOW)
    sync.flush()
    (render, task) = starts[0]
    key = [task["job_id"], task["block_id"], task["task_id"], task["attempt"]]
    report(farm, "r1", key, "success")
    farm.jobs[job_id].paused = True
    farm.dirty_jobs.add(job_id)
    sync.flush()
    sync.store.close()

    again, sync2 = farm_with_store(tmp_path)
    assert set(again.jobs) == {job_id, done_id}
    job = again.jobs[job_id]
    assert (job.name, job.priority, job.paused, job.user_name) == ("render", 120, True, "jimmy")
    assert job.hosts_mask is not None and job.hosts_mask.pattern == "r"
    block = again.jobs[key[0]].blocks[0]
    assert block.states[key[2]] & State.DON and block.starts[key[2]] == 1
    assert block.count(State.DON) == 1
    assert again.render_by_name["r1"].id == render.id and not again.render_by_name["r1"].online
    # ids are never reused
    assert (
        again.add_job(
            {
                "name": "new",
                "blocks": [{"name": "b", "flags": 1, "frame_first": 1, "frame_last": 1}],
            },
            "u",
            "h",
            NOW,
        ).id
        > done_id
    )


def test_running_tasks_wait_for_their_render_then_are_readopted(tmp_path: Path) -> None:
    farm, sync = farm_with_store(tmp_path)
    farm.register_render(b"A", Registration(name="r1"), NOW)
    submit(farm, sync, "job", 3)
    ((render, task),) = Solver(farm).solve(NOW)
    sync.flush()
    sync.store.close()

    again, _ = farm_with_store(tmp_path)
    key = (task["job_id"], task["block_id"], task["task_id"])
    block = again.jobs[key[0]].blocks[0]
    assert block.states[key[2]] & State.WRC and key in again.wrc
    assert not Solver(again).solve(NOW)  # the render is offline; the WRC task is not ready either
    r1 = again.register_render(b"A2", Registration(name="r1"), NOW + 1)
    report(again, "r1", [*key, task["attempt"]], "running")
    assert block.states[key[2]] & State.RUN and key not in again.wrc
    assert r1.tasks == {key: task["attempt"]}
    # a report about another attempt is refused and changes nothing
    result = again.task_reports(
        r1,
        [{"job_id": key[0], "block_id": 0, "task_id": key[2], "attempt": 7, "status": "success"}],
        NOW,
    )
    assert result.close and not result.finished and block.states[key[2]] & State.RUN


def test_unclaimed_running_tasks_return_to_ready_after_the_reconnect_timeout(
    tmp_path: Path,
) -> None:
    farm, sync = farm_with_store(tmp_path)
    farm.register_render(b"A", Registration(name="r1"), NOW)
    submit(farm, sync, "job", 1)
    Solver(farm).solve(NOW)
    sync.flush()
    sync.store.close()
    again, _ = farm_with_store(tmp_path)
    block = next(iter(again.jobs.values())).blocks[0]
    again.refresh(NOW + 10)
    assert block.states[0] & State.WRC
    again.refresh(NOW + 31)
    assert block.states[0] == State.RDY and block.errors[0] == 0


def test_many_task_changes_compact_into_a_new_snapshot(tmp_path: Path) -> None:
    farm, sync = farm_with_store(tmp_path)
    job_id = submit(farm, sync, "big", 5000)
    block = farm.jobs[job_id].blocks[0]
    for i in range(0, 5000, 2):
        block.set_state(i, State.DON | State.SKP)
    sync.flush()
    assert sync.store.db.execute("SELECT count(*) FROM tasks").fetchone()[0] == 0  # compacted
    block.set_state(1, State.DON)
    sync.flush()
    assert sync.store.db.execute("SELECT count(*) FROM tasks").fetchone()[0] == 1
    sync.store.close()
    again, _ = farm_with_store(tmp_path)
    b = again.jobs[job_id].blocks[0]
    assert b.count(State.DON) == 2501 and b.count(State.SKP) == 2500 and b.states[1] == State.DON


def test_deleted_jobs_leave_the_store(tmp_path: Path) -> None:
    farm, sync = farm_with_store(tmp_path)
    job_id = submit(farm, sync, "gone", 2)
    farm.delete_job(farm.jobs[job_id], NOW)
    sync.flush()
    assert sync.store.check()["rows"]["jobs"] == 0 and sync.store.check()["rows"]["blocks"] == 0
    assert sync.store.check()["integrity"] == "ok"


def test_done_jobs_come_back_done_without_becoming_done_again(tmp_path: Path) -> None:
    farm, sync = farm_with_store(tmp_path)
    first = submit(farm, sync, "first", 1)
    second = submit(farm, sync, "second", 1, depend_mask="first|third")
    third = submit(farm, sync, "third", 1)
    farm.jobs[first].blocks[0].set_state(0, State.DON)
    farm.refresh_job(farm.jobs[first], NOW + 5)
    sync.flush()
    sync.store.close()
    again, sync2 = farm_with_store(tmp_path)
    assert first not in again.jobs and again.cold == {first: "first"}  # left in the store
    assert (
        again.add_job({"name": "first", "blocks": [{"name": "b", "flags": 1}]}, "u", "h", NOW).name
        == "first-1"
    )
    job = again.job(first)
    assert job is not None and again.jobs[first] is job and not again.cold
    assert job.state & State.DON and job.time_done == NOW + 5
    assert "done" not in " ".join(job.log) and again.counters["jobs_done"] == 0
    assert again.jobs[second].state & State.WDP  # still waits for "third"
    assert again.jobs[third].state & State.RDY
    assert not again.dirty_jobs


def test_job_edits_and_pause_are_stored(tmp_path: Path) -> None:
    from workers.scheduler import operations as ops

    farm, sync = farm_with_store(tmp_path)
    job_id = submit(farm, sync, "edited", 2)
    job = farm.jobs[job_id]
    ops.job_params(
        farm, job, {"priority": 200, "hosts_mask": "farm", "custom_data": '{"a": 1}'}, NOW
    )
    ops.job_operation(farm, job, "pause", NOW)
    sync.flush()
    sync.store.close()
    again, _ = farm_with_store(tmp_path)
    back = again.jobs[job_id]
    assert (back.priority, back.paused, back.custom_data) == (200, True, '{"a": 1}')
    assert back.hosts_mask is not None and back.hosts_mask.pattern == "farm"


def test_a_zombies_waiting_task_waits_on_from_when_its_render_went_silent(
    tmp_path: Path,
) -> None:
    """A render goes zombie, its task waits (WRC), the server restarts before the wait is
    over: the wait does not start again, and it never becomes endless (the deadline lived
    only in memory, and a restore re-armed only running tasks)."""
    farm, sync = farm_with_store(tmp_path)
    farm.reconnect_timeout = 30.0
    farm.register_render(b"A", Registration(name="r1"), NOW)
    submit(farm, sync, "job", 1)
    Solver(farm).solve(NOW)
    sync.flush()
    assert farm.check_zombies(NOW + 5 + 60) == [farm.render_by_name["r1"]]
    block = next(iter(farm.jobs.values())).blocks[0]
    assert block.states[0] & State.WRC
    silent_at = block.time_done[0]
    sync.flush()
    sync.store.close()

    # two restarts, each before the wait is over
    for restart_at in (silent_at + 10, silent_at + 25):
        again, sync2 = farm_with_store(tmp_path, restart_at)
        block = next(iter(again.jobs.values())).blocks[0]
        assert block.states[0] & State.WRC
        assert again.wrc[(block.job_id, 0, 0)] == silent_at + 30
        again.refresh(restart_at)
        assert block.states[0] & State.WRC
        sync2.flush()
        sync2.store.close()
    again.refresh(silent_at + 31)
    assert block.states[0] == State.RDY and block.errors[0] == 0


def test_a_mask_stored_before_re2_is_dropped_and_the_job_paused(tmp_path: Path) -> None:
    """Masks accepted by Python's `re` (lookarounds, find masks like `farm.*`) may be in a
    store written before patterns ran on RE2: the server still starts, and such a job waits,
    paused, with a log line naming the mask, instead of running where its mask forbade."""
    farm, sync = farm_with_store(tmp_path)
    job_id = submit(farm, sync, "old", 2, hosts_mask="r", depend_mask="x")
    fine_id = submit(farm, sync, "fine", 1, hosts_mask="r")
    sync.flush()
    db = sync.store.db
    (data_text,) = db.execute("SELECT data FROM jobs WHERE id=?", (job_id,)).fetchone()
    data = json.loads(data_text)
    data["params"].update(hosts_mask="farm.*", depend_mask="(?!comp).*")
    (definition,) = db.execute("SELECT definition FROM blocks WHERE job_id=?", (job_id,)).fetchone()
    block = {**json.loads(definition), "tasks_depend_mask": "(a)\\1"}
    with db:
        db.execute("UPDATE jobs SET data=? WHERE id=?", (json.dumps(data), job_id))
        db.execute("UPDATE blocks SET definition=? WHERE job_id=?", (json.dumps(block), job_id))
    sync.store.close()

    again, _ = farm_with_store(tmp_path)
    job = again.jobs[job_id]
    assert job.paused
    assert job.hosts_mask is None and job.depend_mask is None
    assert job.blocks[0].tasks_depend_mask is None
    log = "\n".join(job.log)
    for field in ("job.hosts_mask", "job.depend_mask", "job.blocks[0].tasks_depend_mask"):
        assert field in log
    assert "hosts_mask" not in job.params  # stored again without it
    assert not again.jobs[fine_id].paused


def test_a_submissions_idempotency_key_survives_a_restart(tmp_path: Path) -> None:
    """A client that retries after the server restarted still gets its first job back."""
    farm, sync = farm_with_store(tmp_path)
    body = {"name": "j", "blocks": [{"name": "b", "flags": 1, "frame_first": 1, "frame_last": 1}]}
    job = farm.add_job(body, "jimmy", "ws", NOW, submit_key="key-1")
    sync.insert_job(job)
    assert farm.submitted("jimmy", "key-1") is job
    assert farm.submitted("other", "key-1") is None  # keys are the user's own
    sync.store.close()
    again, _ = farm_with_store(tmp_path)
    found = again.submitted("jimmy", "key-1")
    assert found is not None and found.id == job.id


def test_a_render_back_without_its_task_releases_the_wait_at_once(tmp_path: Path) -> None:
    """After a clean stop the render killed its task: registering again without it, the task
    is ready at once, not after af_task_reconnect_timeout. Another render changes nothing."""
    farm, sync = farm_with_store(tmp_path)
    farm.register_render(b"A", Registration(name="r1"), NOW)
    submit(farm, sync, "job", 1)
    Solver(farm).solve(NOW)
    sync.flush()
    sync.store.close()
    again, _ = farm_with_store(tmp_path)
    block = next(iter(again.jobs.values())).blocks[0]
    assert block.states[0] & State.WRC
    other = again.register_render(b"B", Registration(name="r2"), NOW + 1)
    again.release_unheld(other, set(), NOW + 1)
    assert block.states[0] & State.WRC
    r1 = again.register_render(b"A2", Registration(name="r1"), NOW + 1)
    again.release_unheld(r1, set(), NOW + 1)
    assert block.states[0] == State.RDY and block.errors[0] == 0 and not again.wrc
