"""More work for a job that exists: the original's `append_blocks` and `append_tasks`.

Pipelines add work to a running job (the original's Houdini PDG scheduler does); a done
job gets new tasks and is ready again. Everything is validated before anything changes,
through the same checks as a submission."""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any

from broker.validate import Field, Invalid, check
from workers.scheduler.solver import min_task_capacity
from workers.scheduler.states import State
from workers.scheduler.submit import BLOCK, MAX_TASKS_PER_JOB, TASK, build_block

if TYPE_CHECKING:
    from workers.scheduler.farm import Farm
    from workers.scheduler.jobs import Block, Job

MAX_APPENDED = 100_000  # blocks or tasks one request may add
BLOCKS = Field(list, max_len=MAX_APPENDED, items=Field(dict, fields=BLOCK))
TASKS = Field(list, max_len=MAX_APPENDED, items=Field(dict, fields=TASK))


def append_blocks(farm: Farm, job: Job, blocks: Any, now: float) -> int:
    """New blocks after the job's last; returns how many tasks they bring."""
    data = check({"blocks": blocks}, {"blocks": BLOCKS}, "action.operation")["blocks"]
    if not data:
        raise Invalid("action.operation.blocks", "name at least one block to append")
    mode = job.params.get("hosts_mask_type", "find")
    new: list[Block] = []
    for offset, item in enumerate(data):
        index = len(job.blocks) + offset
        try:
            new.append(build_block(item, index, mode, farm.progress_timeout))
        except Invalid as exc:
            raise Invalid(f"action.operation.{exc.path}", exc.text) from exc
    names = [b.name for b in job.blocks + new]
    if len(set(names)) != len(names):
        raise Invalid("action.operation.blocks", f"block names must be unique, got {names}")
    added = sum(b.tasks_num for b in new)
    _within_cap(job, added)
    for block in new:
        block.job_id = job.id
        block.dirty_sink = farm.dirty_blocks
        job.blocks.append(block)
        farm.redefined_blocks.add(block)
    _more_work(farm, job, f"appended {len(new)} block(s), {added} task(s)", now)
    return added


def append_tasks(farm: Farm, job: Job, block_ids: list[int] | None, tasks: Any, now: float) -> int:
    """New tasks at the end of one list block; returns how many."""
    data = check({"tasks": tasks}, {"tasks": TASKS}, "action.operation")["tasks"]
    if not data:
        raise Invalid("action.operation.tasks", "name at least one task to append")
    if not block_ids or len(block_ids) != 1:
        raise Invalid("action.block_ids", "append_tasks needs exactly one block id")
    if block_ids[0] >= len(job.blocks):
        raise Invalid("action.block_ids", f"job {job.id} has no block {block_ids[0]}")
    block = job.blocks[block_ids[0]]
    if block.numeric or block.list_tasks is None:
        raise Invalid("action.block_ids", f"block '{block.name}' is numeric: tasks go to lists")
    _within_cap(job, len(data))
    extend_tasks(block, data)
    farm.redefined_blocks.add(block)
    _more_work(farm, job, f"appended {len(data)} task(s) to block '{block.name}'", now)
    return len(data)


def extend_tasks(block: Block, tasks: list[dict[str, Any]]) -> None:
    """The block's task arrays grow by new ready (or suspended) tasks."""
    assert block.list_tasks is not None
    n = len(tasks)
    first = State.SUS if block.flags & (1 << 10) else State.RDY  # the block's suspend_new
    block.list_tasks.extend(tasks)
    start = block.tasks_num
    block.tasks_num += n
    block.states.extend(array("I", [first]) * n)
    block.starts.extend(array("I", [0]) * n)
    block.errors.extend(array("I", [0]) * n)
    block.time_start.extend(array("d", [0.0]) * n)
    block.time_done.extend(array("d", [0.0]) * n)
    block.hosts.extend(array("i", [-1]) * n)
    block.recount()
    block.dirty.update(range(start, block.tasks_num))


def _within_cap(job: Job, added: int) -> None:
    total = job.tasks_total() + added
    if total > MAX_TASKS_PER_JOB:
        raise Invalid("action.operation", f"{total} tasks in all; at most {MAX_TASKS_PER_JOB}")


def _more_work(farm: Farm, job: Job, text: str, now: float) -> None:
    """A done job is ready again: its done time goes, and the solver looks at it anew."""
    if job.state & State.DON:
        job.time_done = 0.0
    job.add_log(now, text)
    farm.dirty_jobs.add(job.id)
    farm.ranking_stale = True
    farm.min_task_capacity = min(farm.min_task_capacity, min_task_capacity([job]))
    farm.refresh_job(job, now)
    farm.solve_needed = True
