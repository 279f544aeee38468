"""Monitors: clients that watch the farm live (the original's afwatch and web GUI).

A monitor registers, and re-registers as its heartbeat; after every loop pass that changed
something, each monitor gets one MONITOR_EVENTS push with what changed: jobs, tasks, renders,
users and pools that changed, and ids of the ones that went away. Not snapshots: a page loads
the state once through `get`, then keeps it by these deltas. Nothing is gathered while no
monitor is registered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workers.scheduler.states import short

if TYPE_CHECKING:
    from workers.scheduler.farm import Farm
    from workers.scheduler.jobs import Block

TIMEOUT_SEC = 15.0  # a monitor that has not re-registered for this long is dropped
TASKS_MAX = 5000  # task changes of one job in one push; past that, "reload this job's tasks"
RESOURCES_SEC = 5.0  # each online render's resources are pushed this often...
RESOURCES_SLICES = 5  # ...a slice of the farm at a time (render id modulo the slices)


@dataclass(slots=True)
class Monitor:
    identity: bytes
    id: int
    user_name: str
    host_name: str
    time_register: float
    time_seen: float


@dataclass(slots=True)
class Monitors:
    by_identity: dict[bytes, Monitor] = field(default_factory=dict)
    next_id: int = 1
    resources_sent: float = 0.0
    resources_slice: int = 0

    def register(self, identity: bytes, user_name: str, host_name: str, now: float) -> Monitor:
        monitor = self.by_identity.get(identity)
        if monitor is None:
            monitor = Monitor(identity, self.next_id, user_name, host_name, now, now)
            self.next_id += 1
            self.by_identity[identity] = monitor
        monitor.time_seen = now
        return monitor

    def deregister(self, identity: bytes) -> bool:
        return self.by_identity.pop(identity, None) is not None

    def expire(self, now: float) -> list[Monitor]:
        gone = [m for m in self.by_identity.values() if now - m.time_seen > TIMEOUT_SEC]
        for monitor in gone:
            del self.by_identity[monitor.identity]
        return gone

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {"id": m.id, "user_name": m.user_name, "host_name": m.host_name,
             "time_register": m.time_register, "time_seen": m.time_seen}
            for m in self.by_identity.values()
        ]  # fmt: skip


def task_change(block: Block, i: int) -> dict[str, Any]:
    """A task's state as listings and pushes show it."""
    host = block.hosts[i]
    change: dict[str, Any] = {
        "block_id": block.index,
        "task_id": i,
        "state": short(block.states[i]),
        "starts": block.starts[i],
        "errors": block.errors[i],
        "host": block.host_names[host] if host >= 0 else "",
        "time_start": block.time_start[i],
        "time_done": block.time_done[i],
    }
    run = block.running.get(i)
    if run is not None:
        change["percent"] = run.percent
    return change


def resources_slice(farm: Farm, monitors: Monitors, now: float) -> list[list[Any]]:
    """[render id, host_resources] of the next slice of online renders. Resources change
    with every few heartbeats and nobody marks them: they go out on their own clock, a slice
    at a time and without the rest of the render, so 10,000 renders cost a push of 2,000
    small maps a second rather than 10,000 full renders in one pass every 5 s."""
    monitors.resources_sent = now
    part = monitors.resources_slice
    monitors.resources_slice = (part + 1) % RESOURCES_SLICES
    return [
        [r.id, r.host_resources]
        for r in farm.renders.values()
        if r.id % RESOURCES_SLICES == part and r.online and r.id not in farm.dirty_renders
    ]


def changes(farm: Farm, monitors: Monitors, now: float, new_jobs: set[int]) -> dict[str, Any]:
    """What changed since the store's last commit, read from the farm's dirty marks (so this
    runs just before the flush that clears them), plus the jobs submitted meanwhile (stored
    at once, so not marked), plus a slice of the renders' resources once a second. Empty
    when nothing did."""
    out: dict[str, Any] = {}
    job_ids = farm.dirty_jobs | new_jobs
    tasks: dict[int, list[dict[str, Any]]] = {}
    reload: list[int] = []
    for block in farm.dirty_blocks:
        job_id = block.job_id
        job_ids.add(job_id)
        if job_id in reload:
            continue
        listed = tasks.setdefault(job_id, [])
        if len(listed) + len(block.dirty) > TASKS_MAX:
            reload.append(job_id)
            del tasks[job_id]
            continue
        listed.extend(task_change(block, i) for i in sorted(block.dirty))
    for block, moved in farm.progressed.items():  # percents of running tasks, not stored
        job_id = block.job_id
        if job_id in reload or block.job_id not in farm.jobs:
            continue
        job_ids.add(job_id)
        fresh = sorted(i for i in moved if i not in block.dirty and i in block.running)
        listed = tasks.setdefault(job_id, [])
        if len(listed) + len(fresh) > TASKS_MAX:
            reload.append(job_id)
            del tasks[job_id]
            continue
        listed.extend(task_change(block, i) for i in fresh)
    farm.progressed.clear()
    jobs = [farm.jobs[i].summary() for i in sorted(job_ids) if i in farm.jobs]
    if jobs:
        out["jobs"] = jobs
    if tasks:
        out["tasks"] = [{"job_id": j, "tasks": t} for j, t in tasks.items() if t]
    if reload:
        out["tasks_reload"] = reload
    if farm.removed_job_ids:
        out["jobs_deleted"] = list(farm.removed_job_ids)
    renders = [farm.renders[i] for i in sorted(farm.dirty_renders) if i in farm.renders]
    if renders:
        out["renders"] = [r.to_json(full=True) for r in renders]
    if now - monitors.resources_sent >= RESOURCES_SEC / RESOURCES_SLICES:
        resources = resources_slice(farm, monitors, now)
        if resources:
            out["resources"] = resources
    if farm.deleted_renders:
        out["renders_deleted"] = list(farm.deleted_renders)
    users = [farm.users[n].to_json() for n in sorted(farm.dirty_users) if n in farm.users]
    if users:
        out["users"] = users
    if farm.dirty_pools or farm.deleted_pools:
        out["pools_changed"] = True  # pools are few: a page reloads the tree
    return out
