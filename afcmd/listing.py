"""Rows of `jlist` and `rlist`, with a word on afserver's own parts where they appear.

A newcomer's first `rlist` shows the system job's executors beside their one render, and
their first `jlist` the system job beside their job. Its row would read "0/3000" with state
`-` (its 3,000 tasks are queue slots, not work to be done), so it says what it holds
instead, and a note under each table names what these are.
"""

from __future__ import annotations

import textwrap
from typing import Any

WIDTH = 96  # a note's lines, wrapped for a terminal


def is_system_job(job: dict[str, Any]) -> bool:
    """The system job's listing carries its queues (`system`)."""
    return "system" in job


def job_row(job: dict[str, Any]) -> list[object]:
    """ID NAME USER STATE PRI DONE RUN ERR %: the system job shows its queues' commands."""
    if is_system_job(job):
        queued = sum(q.get("queued", 0) for q in job["system"])
        state = job["state"] if job["state"] not in ("", "-") else "idle"
        return [
            job["id"],
            job["name"],
            job["user_name"],
            state,
            job["priority"],
            f"{queued} queued",
            job["tasks_running"],
            job["tasks_error"],
            "-",
        ]
    return [
        job["id"],
        job["name"],
        job["user_name"],
        job["state"],
        job["priority"],
        f"{job['tasks_done']}/{job['tasks_num']}",
        job["tasks_running"],
        job["tasks_error"],
        f"{job['percentage']}%",
    ]


def jobs_note(jobs: list[dict[str, Any]]) -> str:
    """The line under `jlist` when the system job is listed; empty otherwise."""
    system = [j for j in jobs if is_system_job(j)]
    if not system:
        return ""
    j = system[0]
    queues = ", ".join(q["name"] for q in j["system"])
    return textwrap.fill(
        f"{j['name']} (id {j['id']}) is the system job: its blocks ({queues}) queue the "
        f"commands afserver's executors run (afcmd jshow {j['name']})",
        WIDTH,
    )


EXECUTOR = "sysjob"  # afserver's executor is the render sysjob@HOST (workers/supervisor.py)


def is_executor(render: dict[str, Any]) -> bool:
    """afserver's system-job executor: sysjob@HOST, or (a store from before one executor
    served them all) SERVICE@HOST allowing only SERVICE."""
    service, at, _host = render["name"].partition("@")
    return bool(at) and (service == EXECUTOR or render.get("services") == [service])


def renders_in_order(renders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The farm's renders first, then afserver's executors, each by name."""
    return sorted(renders, key=lambda r: (is_executor(r), r["name"]))


def renders_note(renders: list[dict[str, Any]]) -> str:
    """The line under `rlist` when executors are listed; empty otherwise."""
    names = [r["name"] for r in renders if is_executor(r)]
    if not names:
        return ""
    return textwrap.fill(
        f"{', '.join(names)}: the system job's executor, afserver's own render that runs "
        "its post commands, events and wakes (DRT: it sets its own capacity)",
        WIDTH,
    )
