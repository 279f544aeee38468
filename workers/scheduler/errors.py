"""What an error does to a task (SPEC B §5): error counts, hosts avoided, retries, forgiveness,
and the run-time limits that turn a running task into an error."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.scheduler.states import State

if TYPE_CHECKING:
    from workers.scheduler.jobs import Block, Job


def effective(block_value: int, user_value: int) -> int:
    """Block error settings of -1 take the user's value."""
    return block_value if block_value >= 0 else user_value


def record_error(block: Block, job: Job, i: int, host: str, now: float, why: str) -> None:
    block.errors[i] += 1
    entry = block.error_hosts.setdefault(host, [0, 0.0])
    entry[0] += 1
    entry[1] = now
    task_hosts = block.task_error_hosts.setdefault(i, {})
    task_entry = task_hosts.setdefault(host, [0, 0.0])
    task_entry[0] += 1
    task_entry[1] = now
    block.add_task_log(i, now, f"error on {host}: {why}")
    avoid = effective(block.errors_avoid_host, job.user.errors_avoid_host)
    if avoid > 0 and entry[0] == avoid:
        job.add_log(now, f"block '{block.name}': AVOIDING HOST {host} after {avoid} errors")


def retry_task(block: Block, job: Job, i: int, now: float) -> bool:
    """A non-running error task without a fatal parser error returns to ready while it has
    retries left: retries=3 means up to 4 runs."""
    state = block.states[i]
    if not state & State.ERR or state & (State.PFE | State.RUN):
        return False
    if block.errors[i] > effective(block.errors_retries, job.user.errors_retries):
        return False
    block.set_state(
        i, (state & ~State.ERR & ~(State.PER | State.PBR | State.BRF)) | State.RDY | State.RER
    )
    block.add_task_log(i, now, f"retry {block.errors[i]}: back to ready")
    return True


def forgive(block: Block, job: Job, now: float) -> bool:
    """Error-host entries older than errors_forgive_time are dropped. True when any was."""
    forgive_time = effective(block.errors_forgive_time, job.user.errors_forgive_time)
    if forgive_time <= 0:
        return False
    limit = now - forgive_time
    dropped = False
    for host in [h for h, (_, last) in block.error_hosts.items() if last < limit]:
        del block.error_hosts[host]
        dropped = True
    for i in list(block.task_error_hosts):
        hosts = block.task_error_hosts[i]
        for host in [h for h, (_, last) in hosts.items() if last < limit]:
            del hosts[host]
            dropped = True
        if not hosts:
            del block.task_error_hosts[i]
    return dropped


def overdue_runs(block: Block, now: float) -> list[tuple[int, str]]:
    """Running tasks past task_max_run_time or without progress for too long."""
    overdue = []
    max_run = block.task_max_run_time
    no_progress = block.task_progress_change_timeout
    for i, run in block.running.items():
        if run.stop_reason:
            continue
        if max_run > 0 and now - run.time_start > max_run:
            overdue.append((i, f"task_max_run_time {max_run} s exceeded"))
        elif no_progress > 0 and now - run.time_progress > no_progress:
            overdue.append((i, f"no progress change for {no_progress} s"))
    return overdue
