"""A task run's life: start on a render, progress reports, finish, stop requests.

Every start gets an attempt number (the task's start count); a report about any other
attempt, or from a render that does not hold the task, is refused (SPEC A3), so a task is
never held by two renders. Counters move along job, user, branch chain and render together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stats import rows as stats_rows
from workers.scheduler import errors
from workers.scheduler.jobs import TaskRun
from workers.scheduler.renders import RenderFlag
from workers.scheduler.states import ERROR_STATUSES, RETURN_STATUSES, SUCCESS_STATUSES, State

if TYPE_CHECKING:
    from workers.scheduler.branches import Branch
    from workers.scheduler.farm import Farm
    from workers.scheduler.jobs import Block, Job
    from workers.scheduler.renders import Render
    from workers.scheduler.solver import Start

Key = tuple[int, int, int]  # job id, block index, task index
_WRN_TRY = State.WRN | State.TRY


@dataclass(slots=True)
class Finished:
    """What a finished run left, for statistics and logs."""

    job: Job
    block: Block
    task: int
    run: TaskRun
    status: str
    state: int
    time_done: float


def _count(farm: Farm, job: Job, block: Block, render: Render, run: TaskRun, sign: int) -> None:
    farm.ranks_moved.add(job.id)  # its need changed: the solver moves it in its ranking
    cap = run.capacity * sign
    rid = render.id
    block.running_per_render[rid] += sign
    block.running_capacity += cap
    for node in (job, job.user):
        node.running_tasks += sign
        node.running_capacity += cap
        node.running_per_render[rid] += sign
    for branch in job.branch_node.chain():
        branch.running_tasks += sign
        branch.running_capacity += cap
        branch.running_per_render[rid] += sign
        branch.user_running_tasks[job.user_name] += sign
        branch.user_running_capacity[job.user_name] += cap
    render.capacity_used += cap
    for name, count in block.tickets.items():
        render.tickets_usage[name] += count * sign


def _count_rate(node: Job | Branch, now: float) -> None:
    second = int(now)
    if node.tps[0] != second:
        node.tps[0], node.tps[1] = second, 1
    else:
        node.tps[1] += 1


def start(farm: Farm, s: Start, now: float) -> dict[str, Any]:
    """Put a task on a render; returns what the render needs to run it (the TaskExec)."""
    job, block, i, render = s.job, s.block, s.task, s.render
    attempt = block.starts[i] + 1
    block.starts[i] = attempt
    block.set_state(i, (block.states[i] & _WRN_TRY) | State.RUN)
    block.time_start[i] = now
    block.hosts[i] = block.host_id(render.name)
    run = TaskRun(render.id, render.name, attempt, now, s.capacity, now)
    run.start_seq = render.push_seq + 1  # this pass's push to the render will carry it
    block.running[i] = run
    _count(farm, job, block, render, run, +1)
    render.tasks[(job.id, block.index, i)] = attempt
    render.flags |= RenderFlag.RUN
    job.time_solved = now
    for node in (job, job.branch_node):
        if node.max_tasks_per_second > 0:
            _count_rate(node, now)
    if not block.time_started:
        block.time_started = now
    if not job.time_started:
        job.time_started = now
        job.add_log(now, "started")
        farm.dirty_jobs.add(job.id)
    block.state |= State.RUN
    if not block.count(State.RDY):
        # its last ready task started: until a task is ready again (refresh_job puts the
        # bit back), no solve may take it for a block with something to start on any of
        # the ready renders; every job would look at all of them in every solve
        block.state &= ~State.RDY
    job.state |= State.RUN
    block.add_task_log(i, now, f"started on {render.name} (attempt {attempt})")
    start_frame, end_frame = block.task_frames(i)
    environment = block.task_environment(i)
    if farm.sysjob is not None and job is farm.sysjob.job:  # its effect id and run number
        environment = {**environment, **farm.sysjob.started(block, i, attempt, render.name, now)}
    return {
        "job_id": job.id,
        "block_id": block.index,
        "task_id": i,
        "attempt": attempt,
        "command": block.task_command(i),
        "working_directory": block.task_working_directory(i),
        "environment": environment,
        "files": block.task_files(i),
        "name": block.task_name(i),
        "job_name": job.name,
        "block_name": block.name,
        "user_name": job.user_name,
        "service": block.service,
        "parser": block.parser,
        "capacity": s.capacity,
        "frame_start": start_frame,
        "frame_end": end_frame,
    }


def adopt(
    farm: Farm, render: Render, job: Job, block: Block, i: int, attempt: int, now: float
) -> TaskRun:
    """Take back a run the render still holds: after a server restart (WRC), or after the
    render was thought gone. Safe because no newer start exists (same attempt number)."""
    block.set_state(i, (block.states[i] & _WRN_TRY) | State.RUN)
    run = TaskRun(render.id, render.name, attempt, block.time_start[i] or now, block.capacity, now)
    block.running[i] = run
    _count(farm, job, block, render, run, +1)
    render.tasks[(job.id, block.index, i)] = attempt
    render.flags |= RenderFlag.RUN
    farm.touched_renders.add(render.id)
    block.state |= State.RUN
    job.state |= State.RUN
    block.add_task_log(i, now, f"re-adopted from {render.name} (attempt {attempt})")
    return run


def locate(farm: Farm, key: Key) -> tuple[Job, Block, int] | None:
    job = farm.job(key[0])
    if job is None or not 0 <= key[1] < len(job.blocks):
        return None
    block = job.blocks[key[1]]
    if not 0 <= key[2] < block.tasks_num:
        return None
    return job, block, key[2]


def current_run(
    farm: Farm, render: Render, key: Key, attempt: int
) -> tuple[Job, Block, int, TaskRun] | None:
    """The run a report is about, only if this render holds exactly this attempt."""
    if render.tasks.get(key) != attempt:
        return None
    found = locate(farm, key)
    if found is None:
        return None
    job, block, i = found
    run = block.running.get(i)
    if run is None or run.attempt != attempt or run.render_id != render.id:
        return None
    return job, block, i, run


def progress(run: TaskRun, report: dict[str, Any], now: float) -> bool:
    """Take a report's progress; whether the percent changed (what monitors show)."""
    percent = report.get("percent", run.percent)
    frame = report.get("frame", run.frame)
    activity = report.get("activity", run.activity)
    if (percent, frame, activity) != (run.percent, run.frame, run.activity):
        run.time_progress = now
    moved = percent != run.percent
    run.percent, run.frame, run.activity = percent, frame, activity
    return moved


def finish(
    farm: Farm,
    render: Render,
    job: Job,
    block: Block,
    i: int,
    status: str,
    now: float,
    report: dict[str, Any],
) -> Finished:
    """End a run: free the render and counters, then set the task's state by the outcome."""
    run = block.running.pop(i)
    _count(farm, job, block, render, run, -1)
    render.tasks.pop((job.id, block.index, i), None)
    render.task_start_finish_time = now
    farm.touched_renders.add(render.id)
    if not render.tasks:
        render.flags &= ~RenderFlag.RUN
        render.idle_since, render.no_task_events = now, 0
    block.time_done[i] = now
    if run.time_start:
        block.run_time_sum += now - run.time_start
    old = block.states[i]
    keep = old & State.TRY
    warn = State.WRN if report.get("warning") else 0
    if run.stop_reason:
        # The server asked for this stop: the outcome is what it asked for, not the exit.
        if run.stop_state & State.ERR:
            errors.record_error(block, job, i, run.host, now, f"stopped: {run.stop_reason}")
        new = run.stop_state or State.RDY
        block.add_task_log(i, now, f"stopped on {run.host}: {run.stop_reason}")
    elif status in SUCCESS_STATUSES:
        new = State.DON | SUCCESS_STATUSES[status] | warn
        min_time = block.task_min_run_time
        if (
            min_time > 0
            and status in ("success", "post_failed")
            and now - run.time_start < min_time
        ):
            errors.record_error(
                block, job, i, run.host, now, f"finished faster than task_min_run_time {min_time} s"
            )
            new = State.ERR
        else:
            block.add_task_log(i, now, f"done on {run.host} ({report.get('explain', status)})")
    elif status in ERROR_STATUSES:
        new = State.ERR | ERROR_STATUSES[status] | warn
        errors.record_error(block, job, i, run.host, now, report.get("explain", status))
    else:  # render went away or ejected the task: back to ready, no error counted
        new = State.RDY
        block.add_task_log(i, now, f"returned to ready: {status} on {run.host}")
    block.set_state(i, int(new) | keep)
    row = stats_rows.task_row(job, block, i, run, now, render.host_resources)  # before a retry
    if row is not None:
        farm.stats_rows.append(("tasks", row))
    if new & State.ERR:
        errors.retry_task(block, job, i, now)
    return Finished(job, block, i, run, status, block.states[i], now)


def request_stop(block: Block, i: int, reason: str, state_after: int = 0) -> TaskRun | None:
    """Ask the render to stop a running task; the report of its end sets `state_after`."""
    run = block.running.get(i)
    if run is None:
        return None
    run.stop_reason = reason
    run.stop_state = state_after
    return run


def return_render_tasks(farm: Farm, render: Render, status: str, now: float) -> list[Finished]:
    """A render went offline: its tasks go back to ready without an error.

    A zombie's tasks first wait (WRC) for `af_task_reconnect_timeout`, as after a server
    restart: a zombie is often an afrender killed and started again, whose finished results
    wait in its outbox. Were they handed out at once, a task done there would run twice."""
    assert status in RETURN_STATUSES
    finished = []
    for key in list(render.tasks):
        found = locate(farm, key)
        if found is None or found[1].running.get(found[2]) is None:
            render.tasks.pop(key, None)
            continue
        job, block, i = found
        run = block.running[i]
        run.stop_reason = ""
        finished.append(finish(farm, render, job, block, i, status, now, {}))
        state = block.states[i]
        if status == "render_zombie" and farm.reconnect_timeout > 0 and state & State.RDY:
            block.set_state(i, (state & ~State.RDY) | State.WRC)
            farm.wait_for_render(key, block, now + farm.reconnect_timeout)
            block.add_task_log(i, now, f"waiting for {render.name} to come back (zombie)")
    render.capacity_used = 0
    return finished
