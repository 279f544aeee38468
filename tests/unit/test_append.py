"""append_blocks / append_tasks: more work for a job that exists, done or running, stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.validate import Invalid
from tests.unit.test_persist import NOW, farm_with_store
from workers.scheduler import permissions as perms
from workers.scheduler.requests import action
from workers.scheduler.states import State

JIMMY = perms.Caller(user="jimmy", host="ws", admin=False)


def list_job(farm, sync, name: str = "pdg") -> int:  # type: ignore[no-untyped-def]
    body = {"name": name, "blocks": [{"name": "work", "tasks": [{"name": "a", "command": "x"}]}]}
    job = farm.add_job(body, "jimmy", "ws", NOW)
    sync.insert_job(job)
    return job.id


def act(farm, job_id: int, operation: dict, **extra: object) -> dict:  # type: ignore[no-untyped-def]
    req = {"type": "jobs", "ids": [job_id], "operation": operation, **extra}
    return action(farm, req, JIMMY, NOW)


def test_a_done_job_given_tasks_is_ready_again_and_they_are_stored(tmp_path: Path) -> None:
    farm, sync = farm_with_store(tmp_path)
    job_id = list_job(farm, sync)
    job = farm.jobs[job_id]
    job.blocks[0].set_state(0, State.DON)
    farm.refresh_job(job, NOW)
    assert job.state & State.DON
    tasks = [{"name": "b", "command": "y"}, {"name": "c", "command": "z"}]
    reply = act(farm, job_id, {"type": "append_tasks", "tasks": tasks}, block_ids=[0])
    assert reply["count"] == 2
    assert job.state & State.RDY and not job.state & State.DON and job.time_done == 0
    block = job.blocks[0]
    assert block.tasks_num == 3 and block.task_command(2) == "z"
    assert [block.states[i] & State.RDY for i in (1, 2)] == [State.RDY] * 2
    assert block.count(State.RDY) == 2
    sync.flush()
    sync.store.close()
    again, _ = farm_with_store(tmp_path)
    back = again.jobs[job_id].blocks[0]
    assert back.tasks_num == 3 and back.task_name(2) == "c" and back.count(State.RDY) == 2
    assert back.states[0] & State.DON


def test_blocks_appended_to_a_job_are_stored_and_named_uniquely(tmp_path: Path) -> None:
    farm, sync = farm_with_store(tmp_path)
    job_id = list_job(farm, sync)
    block = {"name": "more", "flags": 1, "frame_first": 1, "frame_last": 4, "command": "r @#@"}
    assert act(farm, job_id, {"type": "append_blocks", "blocks": [block]})["count"] == 4
    with pytest.raises(Invalid, match="unique"):
        act(farm, job_id, {"type": "append_blocks", "blocks": [block]})
    with pytest.raises(Invalid, match=r"blocks\[2\]\.frame_last"):
        act(farm, job_id, {"type": "append_blocks", "blocks": [{**block, "frame_last": -1}]})
    assert [b.name for b in farm.jobs[job_id].blocks] == ["work", "more"]  # nothing half-done
    sync.flush()
    sync.store.close()
    again, _ = farm_with_store(tmp_path)
    back = again.jobs[job_id]
    assert [b.name for b in back.blocks] == ["work", "more"] and back.blocks[1].tasks_num == 4


def test_append_tasks_needs_one_list_block(tmp_path: Path) -> None:
    farm, sync = farm_with_store(tmp_path)
    job_id = list_job(farm, sync)
    block = {"name": "num", "flags": 1, "frame_first": 1, "frame_last": 2}
    act(farm, job_id, {"type": "append_blocks", "blocks": [block]})
    task = {"type": "append_tasks", "tasks": [{"command": "y"}]}
    with pytest.raises(Invalid, match="numeric"):
        act(farm, job_id, task, block_ids=[1])
    with pytest.raises(Invalid, match="exactly one block"):
        act(farm, job_id, task)
    with pytest.raises(Invalid, match="no block 5"):
        act(farm, job_id, task, block_ids=[5])
    with pytest.raises(Invalid, match="at least one task"):
        act(farm, job_id, {"type": "append_tasks", "tasks": []}, block_ids=[0])
    other = perms.Caller(user="bob", host="ws", admin=False)
    req = {"type": "jobs", "ids": [job_id], "block_ids": [0], "operation": task}
    with pytest.raises(Exception, match="admin"):
        action(farm, req, other, NOW)
    assert farm.jobs[job_id].blocks[0].tasks_num == 1
