"""Pools: the tree renders live in, whose parameters renders inherit.

This holds the root pool "/" and the parameters renders need to talk to the server
(heartbeat, resources period, zombie time, exit-no-task time) and their capacity figures.
A parameter <= 0 inherits up the chain; at the root it falls back to the built-in value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
