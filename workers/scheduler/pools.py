"""Pools: the tree renders live in, whose parameters renders inherit (SPEC B §1.8).

A parameter left unset (-1, "", [] or, for the timing group, <= 0) inherits up the chain;
at the root it falls back to the built-in value. New renders go down from the root into the
first child whose pattern matches their name; known renders keep their pool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from broker.patterns import Pattern, compile_pattern
from broker.validate import Field, Invalid, Schema, check
from workers.scheduler.renders import Render, RenderFlag

ROOT = "/"
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")

# Parameters inherited when <= 0 (timing, events, sick) and when < 0 (idle/busy thresholds).
TIMING = ("heartbeat_sec", "resources_update_period", "zombie_time", "exit_no_task_time")
EVENT_TIMES = ("no_task_event_time", "overload_event_time", "sick_errors_count")
AUTOMATION = ("idle_wolsleep_time", "idle_free_time", "busy_nimby_time")
THRESHOLDS = tuple(
    f"{kind}_{what}"
    for kind in ("idle", "busy")
    for what in ("cpu", "mem", "swp", "hddgb", "hddio", "netmbs")
)
FARM_INTS = ("capacity_host", "max_tasks_host", "power_host")

PARAMS: Schema = {
    "priority": Field(int, min=0, max=255),
    "paused": Field(bool),
    "annotation": Field(str, max_len=65536),
    "custom_data": Field(str, max_len=65536),
    "pattern": Field(str, max_len=4096),
    "properties_host": Field(str, max_len=4096),
    "new_nimby": Field(bool),
    "new_paused": Field(bool),
    **{k: Field(int, min=-1) for k in FARM_INTS},
    **{k: Field(float) for k in TIMING + EVENT_TIMES + AUTOMATION + THRESHOLDS},
}


@dataclass(frozen=True, slots=True)
class Builtins:
    """Values used when the whole pool chain leaves a parameter unset (<= 0)."""

    heartbeat_sec: float = 1.0
    resources_update_period: int = 5
    zombie_time: float = 16.0
    exit_no_task_time: float = 0.0


@dataclass(slots=True, eq=False)
class Pool:
    path: str
    parent: str | None = None
    priority: int = 99
    paused: bool = False
    annotation: str = ""
    custom_data: str = ""
    pattern: str = ""
    properties_host: str = ""
    new_nimby: bool = False
    new_paused: bool = False
    services: list[str] = field(default_factory=list)
    services_disabled: list[str] = field(default_factory=list)
    tickets_host: dict[str, int] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)  # the numeric parameters that are set
    time_creation: float = 0.0
    children: list[str] = field(default_factory=list)
    renders: set[int] = field(default_factory=set)
    _regex: Pattern | None = field(default=None, repr=False)

    def matches(self, render_name: str) -> bool:
        if not self.pattern:
            return False
        if self._regex is None:
            try:
                self._regex = compile_pattern(self.pattern, "pattern", ignore_case=True)
            except Invalid:  # stored before patterns ran on RE2: it takes no render until reset
                return False
        return self._regex.fullmatch(render_name)

    def settings(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "parent": self.parent,
            "priority": self.priority,
            "paused": self.paused,
            "annotation": self.annotation,
            "custom_data": self.custom_data,
            "pattern": self.pattern,
            "properties_host": self.properties_host,
            "new_nimby": self.new_nimby,
            "new_paused": self.new_paused,
            "services": self.services,
            "services_disabled": self.services_disabled,
            "tickets_host": self.tickets_host,
            "params": self.params,
            "time_creation": self.time_creation,
        }

    @classmethod
    def from_settings(cls, data: dict[str, Any]) -> Pool:
        return cls(**{k: v for k, v in data.items() if k in _STORED})


_NUMERIC = frozenset(FARM_INTS + TIMING + EVENT_TIMES + AUTOMATION + THRESHOLDS)
_STORED = frozenset(
    [
        "path",
        "parent",
        "custom_data",
        "priority",
        "paused",
        "annotation",
        "pattern",
        "properties_host",
        "new_nimby",
        "new_paused",
        "services",
        "services_disabled",
        "tickets_host",
        "params",
        "time_creation",
    ]
)


def root_pool(now: float) -> Pool:
    """The root pool as the original creates it: 4 tasks and capacity 1100 per host."""
    return Pool(ROOT, None, params={"capacity_host": 1100, "max_tasks_host": 4}, time_creation=now)


class Pools:
    def __init__(self, builtins: Builtins, now: float) -> None:
        self.builtins = builtins
        self.by_path: dict[str, Pool] = {ROOT: root_pool(now)}

    # --- the tree --------------------------------------------------------------------------

    def chain(self, path: str) -> list[Pool]:
        """The pool and its ancestors, nearest first; unknown paths fall back to the root."""
        pool = self.by_path.get(path) or self.by_path[ROOT]
        chain = [pool]
        while pool.parent is not None:
            pool = self.by_path[pool.parent]
            chain.append(pool)
        return chain

    def add(self, parent_path: str, name: str, now: float) -> Pool:
        parent = self.by_path.get(parent_path)
        if parent is None:
            raise Invalid("pool", f"no pool '{parent_path}'")
        if not _NAME.fullmatch(name):
            raise Invalid("name", f"a pool name is letters, digits, _ . -; got {name!r}")
        path = parent.path.rstrip("/") + "/" + name
        if path in self.by_path:
            raise Invalid("name", f"pool '{path}' exists")
        pool = self.by_path[path] = Pool(path, parent.path, time_creation=now)
        parent.children.append(path)
        return pool

    def delete(self, path: str) -> None:
        pool = self.by_path.get(path)
        if pool is None:
            raise Invalid("pool", f"no pool '{path}'")
        if pool.parent is None:
            raise Invalid("pool", "the root pool cannot be deleted")
        if pool.children or pool.renders:
            raise Invalid(
                "pool",
                f"pool '{path}' is not empty: {len(pool.children)} pools, {len(pool.renders)} renders",
            )
        del self.by_path[path]
        self.by_path[pool.parent].children.remove(path)

    def restore(self, stored: list[dict[str, Any]]) -> None:
        """Stored pools, parents before children (sorted by path)."""
        for data in sorted(stored, key=lambda d: d["path"].count("/") if d["path"] != ROOT else 0):
            pool = Pool.from_settings(data)
            if pool.path == ROOT:
                self.by_path[ROOT] = pool
                continue
            if pool.parent not in self.by_path:
                continue  # its parent is gone: its renders fall back to the root
            self.by_path[pool.path] = pool
            self.by_path[pool.parent].children.append(pool.path)

    def assign(self, render_name: str) -> Pool:
        """Where a new render goes: down from the root into the first child that matches."""
        pool = self.by_path[ROOT]
        while True:
            child = next(
                (self.by_path[c] for c in pool.children if self.by_path[c].matches(render_name)),
                None,
            )
            if child is None:
                return pool
            pool = child

    def set_params(self, path: str, params: dict[str, Any]) -> Pool:
        pool = self.by_path.get(path)
        if pool is None:
            raise Invalid("pool", f"no pool '{path}'")
        check(params, PARAMS, "params")
        regex = pool._regex
        if "pattern" in params:
            if pool.parent is None and params["pattern"]:
                raise Invalid(
                    "params.pattern", "the root pool takes every render: it has no pattern"
                )
            regex = compile_pattern(params["pattern"], "params.pattern", ignore_case=True)
        if pool.parent is None and params.get("max_tasks_host", 1) < 0:
            raise Invalid(
                "params.max_tasks_host", "the root pool's max_tasks_host cannot be negative"
            )
        pool._regex = regex
        for key, value in params.items():
            if key in _NUMERIC:
                if value == -1:
                    pool.params.pop(key, None)
                else:
                    pool.params[key] = value
            else:
                setattr(pool, key, value)
        return pool

    # --- inherited values -------------------------------------------------------------------

    def value(self, path: str, name: str, default: int) -> int:
        """A farm field (-1 = inherit) from the nearest pool that sets it."""
        for pool in self.chain(path):
            value = pool.params.get(name, -1)
            if value >= 0:
                return int(value)
        return default

    def inherited(self, path: str, name: str, default: float | None = None) -> float:
        """Timing and event parameters inherit while <= 0; then the built-in (or `default`)."""
        for pool in self.chain(path):
            value = pool.params.get(name, -1)
            if value > 0:
                return value
        return getattr(self.builtins, name) if default is None else default

    def threshold(self, path: str, name: str) -> float:
        """idle_/busy_ thresholds inherit while < 0; -1 at the end means off."""
        for pool in self.chain(path):
            value = pool.params.get(name, -1)
            if value >= 0:
                return value
        return -1

    def not_ready(self, path: str) -> str | None:
        """A pool chain is ready when no pool in it has priority 0 or is paused."""
        for pool in self.chain(path):
            if pool.paused:
                return f"pool {pool.path} paused"
            if pool.priority <= 0:
                return f"pool {pool.path} priority 0"
        return None

    def priority(self, path: str) -> float:
        """Render-ordering priority: the root's own; a child's is (own + parent's) / 2."""
        chain = self.chain(path)
        value = float(chain[-1].priority)
        for pool in reversed(chain[:-1]):
            value = (pool.priority + value) / 2
        return value

    def render_config(self, path: str) -> dict[str, float]:
        """What a render is told about its heartbeat and timeouts."""
        return {
            "heartbeat_sec": self.inherited(path, "heartbeat_sec"),
            "resources_update_period": int(self.inherited(path, "resources_update_period")),
            "zombie_time": self.inherited(path, "zombie_time"),
            "exit_no_task_time": self.inherited(path, "exit_no_task_time"),
        }

    def to_json(self, pool: Pool, renders: list[Render]) -> dict[str, Any]:
        """A pool with its counters over the renders directly in it (RUN/PAU as its state)."""
        mine = [r for r in renders if r.pool == pool.path]
        busy = sum(1 for r in mine if r.tasks)
        return {
            **pool.settings(),
            "pools_total": len(pool.children),
            "renders_total": len(mine),
            "renders_online": sum(1 for r in mine if r.online),
            "renders_busy": busy,
            "renders_nimby": sum(1 for r in mine if r.flags & (RenderFlag.NbY | RenderFlag.NBY)),
            "renders_paused": sum(1 for r in mine if r.flags & RenderFlag.PAU),
            "renders_sick": sum(1 for r in mine if r.flags & RenderFlag.SIC),
            "run_tasks": sum(len(r.tasks) for r in mine),
            "run_capacity": sum(r.capacity_used for r in mine),
            "state": " ".join(s for s, on in (("RUN", busy), ("PAU", pool.paused)) if on),
            "calc_priority": self.priority(pool.path),
            "render_config": self.render_config(pool.path),
        }

    def below(self, path: str) -> list[Pool]:
        """The pool and every pool under it."""
        out, todo = [], [path]
        while todo:
            pool = self.by_path[todo.pop()]
            out.append(pool)
            todo.extend(pool.children)
        return out

    # --- what a render may do, its own settings first, then up the pool chain -----------

    def capacity(self, render: Render) -> int:
        if render.capacity_host >= 0:
            return render.capacity_host
        return self.value(render.pool, "capacity_host", -1)

    def max_tasks(self, render: Render) -> int:
        if render.max_tasks_host >= 0:
            return render.max_tasks_host
        return max(1, self.value(render.pool, "max_tasks_host", 1))

    def power(self, render: Render) -> int:
        return (
            render.power_host
            if render.power_host >= 0
            else self.value(render.pool, "power_host", -1)
        )

    def properties(self, render: Render) -> str:
        if render.properties_host:
            return render.properties_host
        return next((p.properties_host for p in self.chain(render.pool) if p.properties_host), "")

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
