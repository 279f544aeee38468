"""`get {"type": "metrics"}`: the farm counted for a Prometheus scrape (web/metrics.py).

One reply with aggregated counts, so a scrape costs the scheduler O(renders + blocks),
never a listing of the farm. Each job and render is counted under one state (the first of
its flags in the orders below), so a family's counts add up to the whole; tasks are
counted per flag, as the blocks' progress counters are (a skipped task is also done).
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections import Counter
from pathlib import Path
from typing import Any

from broker.replytimes import REPLY_BUCKETS_MS
from workers.scheduler.renders import RenderFlag
from workers.scheduler.states import State

JOB_STATES = (
    ("paused", State.OFF),
    ("error", State.ERR),
    ("running", State.RUN),
    ("waiting_dependencies", State.WDP),
    ("waiting_time", State.WTM),
    ("ready", State.RDY),
    ("done", State.DON),
)
RENDER_STATES = (  # of an online render; "idle" when none is set
    ("falling_asleep", RenderFlag.WFL),
    ("paused", RenderFlag.PAU),
    ("nimby", RenderFlag.NBY),
    ("nimby_owner", RenderFlag.NbY),
    ("sick", RenderFlag.SIC),
    ("busy", RenderFlag.RUN),
)
TASK_STATES = (
    ("ready", State.RDY),
    ("running", State.RUN),
    ("done", State.DON),
    ("error", State.ERR),
    ("skipped", State.SKP),
    ("suspended", State.SUS),
    ("warning", State.WRN),
)
_LAST = len(REPLY_BUCKETS_MS) - 1


class Histogram:
    """Durations counted since the start in the broker's reply buckets (ms upper bounds)."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * len(REPLY_BUCKETS_MS)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[min(bisect_left(REPLY_BUCKETS_MS, seconds * 1000.0), _LAST)] += 1
        self.sum += seconds

    def to_json(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "sum": round(self.sum, 6)}


class Timings:
    """The scheduler's own durations: solve passes, store commits, solve-to-dispatch."""

    def __init__(self) -> None:
        self.solve = Histogram()
        self.commit = Histogram()
        self.dispatch = Histogram()

    def to_json(self) -> dict[str, Any]:
        return {
            "solve": self.solve.to_json(),
            "commit": self.commit.to_json(),
            "dispatch": self.dispatch.to_json(),
        }


def job_state(state: int) -> str:
    return next((name for name, bit in JOB_STATES if state & bit), "other")


def render_state(flags: int) -> str:
    if not flags & RenderFlag.ONL:
        if flags & RenderFlag.WWK:
            return "waking"
        return "asleep" if flags & RenderFlag.WSL else "offline"
    return next((name for name, bit in RENDER_STATES if flags & bit), "idle")


def store_size(folder: str, file_name: str) -> int:
    """Bytes of the store's database files (with its WAL); 0 when there is no folder."""
    if not folder:
        return 0
    total = 0
    for path in Path(folder).glob(file_name + "*"):
        try:
            total += path.stat().st_size
        except OSError:
            continue  # a WAL checkpointed away meanwhile
    return total


def processes() -> list[dict[str, Any]]:
    """CPU and resident memory of afserver's processes (this scheduler's siblings).

    psutil is imported here, on the first scrape: a scheduler nobody scrapes stays 2.6 MB
    smaller."""
    import psutil

    out: list[dict[str, Any]] = []
    try:
        children = psutil.Process(os.getppid()).children()
    except psutil.Error:
        return out
    for proc in children:
        try:
            with proc.oneshot():
                cmd = proc.cmdline()
                cpu = proc.cpu_times()
                rss = proc.memory_info().rss
        except psutil.Error:
            continue
        name = cmd[cmd.index("-m") + 1] if "-m" in cmd[:-1] else proc.name()
        if "--name" in cmd[:-1]:
            name = f"{name} {cmd[cmd.index('--name') + 1]}"
        out.append({"name": name, "cpu_seconds": cpu.user + cpu.system, "rss_bytes": rss})
    return out


def snapshot(farm: Any, timings: Timings, store_bytes: int) -> dict[str, Any]:
    """The counts of `farm` (a scheduler Farm): plain lists and dicts for msgpack."""
    renders = Counter((render_state(r.flags), r.pool) for r in farm.renders.values())
    jobs: Counter[tuple[str, str]] = Counter()
    tasks: Counter[str] = Counter()
    for job in farm.jobs.values():
        jobs[(job_state(job.state), job.user_name)] += 1
        for block in job.blocks:
            for name, bit in TASK_STATES:
                tasks[name] += block.count(bit)
    sysjob = farm.sysjob
    return {
        "renders": [[state, pool, n] for (state, pool), n in sorted(renders.items())],
        "jobs": [[state, user, n] for (state, user), n in sorted(jobs.items())],
        "jobs_cold": len(farm.cold),
        "tasks": {name: tasks[name] for name, _ in TASK_STATES},
        "timings": timings.to_json(),
        "system": sysjob.summary() if sysjob is not None else [],
        "system_ended": sysjob.ended_counts() if sysjob is not None else {},
        "counters": dict(farm.counters),
        "store_bytes": store_bytes,
        "processes": processes(),
    }
