"""Pools: the tree renders live in, whose parameters renders inherit.

This holds the root pool "/" and the parameters renders need to talk to the server
(heartbeat, resources period, zombie time, exit-no-task time) and their capacity figures.
A parameter <= 0 inherits up the chain; at the root it falls back to the built-in value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workers.scheduler.renders import Render

ROOT = "/"


@dataclass(frozen=True, slots=True)
class Builtins:
    """Values used when the whole pool chain leaves a parameter unset (<= 0)."""

    heartbeat_sec: float = 1.0
    resources_update_period: int = 5
    zombie_time: float = 16.0
    exit_no_task_time: float = 0.0


@dataclass(slots=True)
class Pool:
    path: str
    parent: str | None = None
    priority: int = 99
    capacity_host: int = -1
    max_tasks_host: int = -1
    heartbeat_sec: float = -1
    resources_update_period: int = -1
    zombie_time: float = -1
    exit_no_task_time: float = -1
    annotation: str = ""
    services: list[str] = field(default_factory=list)
    services_disabled: list[str] = field(default_factory=list)
    tickets_host: dict[str, int] = field(default_factory=dict)
    time_creation: float = 0.0
    renders: set[int] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "parent": self.parent,
            "priority": self.priority,
            "capacity_host": self.capacity_host,
            "max_tasks_host": self.max_tasks_host,
            "heartbeat_sec": self.heartbeat_sec,
            "resources_update_period": self.resources_update_period,
            "zombie_time": self.zombie_time,
            "exit_no_task_time": self.exit_no_task_time,
            "annotation": self.annotation,
            "renders_total": len(self.renders),
        }


def root_pool(now: float) -> Pool:
    """The root pool as the original creates it: 4 tasks and capacity 1100 per host."""
    return Pool(ROOT, None, capacity_host=1100, max_tasks_host=4, time_creation=now)


class Pools:
    def __init__(self, builtins: Builtins, now: float) -> None:
        self.builtins = builtins
        self.by_path: dict[str, Pool] = {ROOT: root_pool(now)}

    def chain(self, path: str) -> list[Pool]:
        """The pool and its ancestors, nearest first; unknown paths fall back to the root."""
        pool = self.by_path.get(path) or self.by_path[ROOT]
        chain = [pool]
        while pool.parent is not None:
            pool = self.by_path[pool.parent]
            chain.append(pool)
        return chain

    def value(self, path: str, name: str, default: int) -> int:
        """A farm field (-1 = inherit) from the nearest pool that sets it."""
        for pool in self.chain(path):
            value = getattr(pool, name)
            if value >= 0:
                return value
        return default

    def inherited(self, path: str, name: str) -> float:
        for pool in self.chain(path):
            value = getattr(pool, name)
            if value > 0:
                return value
        return getattr(self.builtins, name)

    def render_config(self, path: str) -> dict[str, float]:
        """What a render is told about its heartbeat and timeouts."""
        return {
            "heartbeat_sec": self.inherited(path, "heartbeat_sec"),
            "resources_update_period": int(self.inherited(path, "resources_update_period")),
            "zombie_time": self.inherited(path, "zombie_time"),
            "exit_no_task_time": self.inherited(path, "exit_no_task_time"),
        }

    # --- what a render may do, its own settings first, then up the pool chain -----------

    def capacity(self, render: Render) -> int:
        if render.capacity_host >= 0:
            return render.capacity_host
        return self.value(render.pool, "capacity_host", -1)

    def max_tasks(self, render: Render) -> int:
        if render.max_tasks_host >= 0:
            return render.max_tasks_host
        return max(1, self.value(render.pool, "max_tasks_host", 1))

    def service_refused(self, render: Render, service: str) -> str | None:
        """Disabled anywhere up the chain refuses; if any node lists services, it must be listed."""
        chain = [render, *self.chain(render.pool)]
        listed = False
        for node in chain:
            if service in node.services_disabled:
                return f"service '{service}' disabled on {getattr(node, 'path', 'the render')}"
            listed = listed or bool(node.services)
        if listed and not any(service in node.services for node in chain):
            return f"service '{service}' not enabled on the render or its pools"
        return None

    def tickets_free(self, render: Render, name: str) -> int | None:
        """Free host tickets of a name, or None when neither render nor pools define it."""
        count = render.tickets_host.get(name)
        if count is None:
            for pool in self.chain(render.pool):
                if name in pool.tickets_host:
                    count = pool.tickets_host[name]
                    break
        return None if count is None else count - render.tickets_usage[name]
