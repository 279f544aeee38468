"""Statistics rows as the original writes them (pure): one `tasks` row per finished run that
started, one `jobs` row per block with done tasks and run time when a job is deleted."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from workers.scheduler.states import State

if TYPE_CHECKING:
    from workers.scheduler.jobs import Block, Job, TaskRun


def folder(job: Job) -> str:
    """The value of the alphabetically first `folders` key, else the branch."""
    if job.folders:
        return job.folders[sorted(job.folders)[0]]
    return job.branch


def task_row(
    job: Job, block: Block, i: int, run: TaskRun, time_done: float, resources: dict[str, Any]
) -> dict[str, Any] | None:
    if not run.time_start or run.time_start == time_done:
        return None  # never started, or no length (the original compared whole seconds)
    return {
        "annotation": job.annotation,
        "blockname": block.name,
        "capacity": run.capacity,
        "command": block.task_command(i),
        "description": job.description,
        "error": 1 if block.states[i] & State.ERR else 0,
        "errors_count": block.errors[i],
        "folder": folder(job),
        "frame_pertask": block.frames_per_task,
        "hostname": run.host,
        "jobname": job.name,
        "resources": json.dumps(resources, separators=(",", ":")) if resources else "",
        "service": block.service,
        "starts_count": block.starts[i],
        "time_done": int(time_done),
        "time_started": int(run.time_start),
        "username": job.user_name,
        "serial": job.serial,
        "id_block": block.index,
        "id_task": i,
    }


def log_row(now: float, subject: str, kind: str, obj: str, info: str) -> dict[str, Any]:
    """A `logs` row: who (`subject`, user@host or a render), the kind of node acted on
    (jobs, renders, pools, users, server), which ones (`object`), and what happened."""
    return {"time": int(now), "subject": subject, "type": kind, "object": obj, "info": info}


def job_rows(job: Job, now: float) -> list[dict[str, Any]]:
    if not job.time_started:
        return []
    rows = []
    for block in job.blocks:
        done = block.count(State.DON)
        if done <= 0 or block.run_time_sum <= 0:
            continue
        rows.append(
            {
                "annotation": job.annotation,
                "blockname": block.name,
                "capacity": block.capacity,
                "description": job.description,
                "folder": folder(job),
                "jobname": job.name,
                "hostname": job.host_name,
                "service": block.service,
                "tasks_done": done,
                "tasks_quantity": block.tasks_num,
                "run_time_sum": int(block.run_time_sum),
                "time_done": int(job.time_done or now),
                "time_started": int(job.time_started),
                "username": job.user_name,
                "serial": job.serial,
                "id_block": block.index,
            }
        )
    return rows
