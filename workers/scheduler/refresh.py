"""Job and block states from their tasks and dependencies (the original's refresh).

A block is the OR of its tasks' RUN/WRN/SUS/ERR/RDY/SKP and DON when all are done; RDY is
dropped while it waits for dependencies. The job likewise over its blocks, plus job
dependencies, time_wait and pause. Counts make this cheap: no task is looked at here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.scheduler.states import State

if TYPE_CHECKING:
    from workers.scheduler.jobs import Block, Job

_OR_BITS = (State.RUN, State.WRN, State.SUS, State.ERR, State.RDY, State.SKP)
_OR_MASK = sum(_OR_BITS)


def block_state(block: Block, job: Job) -> int:
    state = 0
    for bit in _OR_BITS:
        if block.count(bit):
            state |= bit
    if block.running:
        state |= State.RUN
    if block.done:
        state |= State.DON
    if block.depend_mask is not None and any(
        other is not block and not other.done and block.depend_mask.fullmatch(other.name)
        for other in job.blocks
    ):
        state = (state | State.WDP) & ~State.RDY
    if block.tasks_depend_mask is not None and state & State.RDY:
        depended = [
            b for b in job.blocks if b is not block and block.tasks_depend_mask.fullmatch(b.name)
        ]
        if depended and all(b.count(State.DON) == 0 and not b.running for b in depended):
            state = (state | State.WDP) & ~State.RDY  # nothing it depends on has even started
    return state


def job_state(job: Job, waiting_for: list[Job], now: float) -> int:
    """`waiting_for`: other not-done jobs its depend masks match (found by the farm)."""
    state = 0
    all_done = True
    for block in job.blocks:
        block.state = block_state(block, job)
        state |= block.state & _OR_MASK
        all_done = all_done and bool(block.state & State.DON)
    if all_done:
        state |= State.DON
    if waiting_for or job.waiting_pre:
        state = (state | State.WDP) & ~State.RDY
    if job.pre_failed:
        state = (state | State.ERR) & ~State.RDY & ~State.DON
    if job.time_wait > now:
        state = (state | State.WTM) & ~State.RDY
    if job.paused:
        state |= State.OFF
    return state
