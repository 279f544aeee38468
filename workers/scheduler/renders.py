"""Render: a farm host as the scheduler sees it, with the original's state bits and fields."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from workers.scheduler.history import History

LOG_LINES_MAX = 100  # af_node_log_lines_max


class RenderFlag:
    """The original's render state bits; short names are what listings show. Plain ints,
    as State (states.py)."""

    ONL = 1 << 0  # online (else OFF)
    NbY = 1 << 1  # nimby: only the owner's jobs
    NBY = 1 << 2  # NIMBY: no jobs
    RUN = 1 << 3  # busy
    DRT = 1 << 4  # dirty: overrides capacity_host / max_tasks_host
    WFL = 1 << 5  # falling asleep
    WSL = 1 << 6  # sleeping
    WWK = 1 << 7  # waking requested
    PAU = 1 << 8  # paused
    SIC = 1 << 9  # sick


# Flags that survive a restart; ONL and RUN are always recomputed.
PERSISTENT_FLAGS = (
    RenderFlag.NbY | RenderFlag.NBY | RenderFlag.PAU | RenderFlag.SIC | RenderFlag.WSL
)


BITS = {name: bit for name, bit in vars(RenderFlag).items() if name[:1].isupper()}


def state_names(flags: int) -> list[str]:
    names = ["ONL" if flags & RenderFlag.ONL else "OFF"]
    names += [name for name, bit in BITS.items() if bit != RenderFlag.ONL and flags & bit]
    return names


@dataclass(slots=True)
class Render:
    id: int
    name: str
    user_name: str = ""
    priority: int = 99
    pool: str = "/"
    os: str = ""
    engine: str = ""
    address: str = ""
    netifs: list[dict[str, Any]] = field(default_factory=list)
    host: dict[str, Any] = field(default_factory=dict)  # static facts: cpu, memory, hw
    host_resources: dict[str, Any] = field(default_factory=dict)
    history: History = field(default_factory=History)  # recent resources, for the graphs
    flags: int = 0
    # farm fields, -1 / "" / [] = inherit from the pool chain
    capacity_host: int = -1
    max_tasks_host: int = -1
    power_host: int = -1
    properties_host: str = ""
    services: list[str] = field(default_factory=list)
    services_disabled: list[str] = field(default_factory=list)
    annotation: str = ""
    custom_data: str = ""
    time_launch: float = 0.0
    time_register: float = 0.0
    time_update: float = 0.0
    time_offline: float = 0.0
    tickets_host: dict[str, int] = field(default_factory=dict)
    identity: bytes | None = None  # routing identity of the connected afrender; not persisted
    proven: str = ""  # the name its key proved at registration (af_auth); not persisted
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES_MAX))
    # running work, not persisted
    tasks: dict[tuple[int, int, int], int] = field(default_factory=dict)  # task key -> attempt
    capacity_used: int = 0
    tickets_usage: Counter[str] = field(default_factory=Counter)
    task_start_finish_time: float = 0.0
    # periodic checks, not persisted
    sick_records: list[tuple[float, str, str]] = field(default_factory=list)  # time, service, user
    idle_since: float = 0.0
    no_task_events: int = 0
    overload_since: float = 0.0
    overload_events: int = 0
    wol_operation_time: float = 0.0
    wake_attempts: int = 0
    push_seq: int = 0  # pushes that carried starts; the render echoes the last it has seen

    @property
    def online(self) -> bool:
        return bool(self.flags & RenderFlag.ONL)

    def add_log(self, now: float, text: str) -> None:
        self.log.append(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now))} {text}")

    def go_online(self, identity: bytes, now: float) -> None:
        self.identity = identity
        self.flags = (self.flags | RenderFlag.ONL) & ~(
            RenderFlag.WFL | RenderFlag.WSL | RenderFlag.WWK
        )
        self.time_register = now
        self.time_update = now
        if not self.tasks:
            self.idle_since, self.no_task_events = now, 0

    def go_offline(self, now: float) -> None:
        """Offline turns falling-asleep into sleeping, as in the original."""
        if self.flags & RenderFlag.WFL:
            self.flags |= RenderFlag.WSL
        self.flags &= ~(RenderFlag.ONL | RenderFlag.RUN | RenderFlag.WFL)
        self.identity = None
        self.time_offline = now

    def settings(self) -> dict[str, Any]:
        """What the store keeps: everything but live connection state and resources."""
        return {
            "id": self.id,
            "name": self.name,
            "user_name": self.user_name,
            "priority": self.priority,
            "pool": self.pool,
            "os": self.os,
            "engine": self.engine,
            "address": self.address,
            "netifs": self.netifs,
            "host": self.host,
            "flags": int(self.flags & PERSISTENT_FLAGS),
            "capacity_host": self.capacity_host,
            "max_tasks_host": self.max_tasks_host,
            "power_host": self.power_host,
            "properties_host": self.properties_host,
            "services": self.services,
            "services_disabled": self.services_disabled,
            "annotation": self.annotation,
            "custom_data": self.custom_data,
            "tickets_host": self.tickets_host,
            "time_launch": self.time_launch,
            "time_register": self.time_register,
            "time_update": self.time_update,
            "time_offline": self.time_offline,
        }

    @classmethod
    def from_settings(cls, data: dict[str, Any]) -> Render:
        """A stored render comes back offline, as in the original."""
        known = {k: v for k, v in data.items() if k in _SETTING_FIELDS}
        render = cls(**known)
        render.flags &= PERSISTENT_FLAGS
        return render

    def table_json(self) -> dict[str, Any]:
        """What the monitor's renders table shows, and no more: 10,000 renders in full are
        11 MB of JSON, in this about 2 MB (a render's panel asks for the one in full)."""
        res = self.host_resources
        return {
            "id": self.id,
            "name": self.name,
            "pool": self.pool,
            "state": state_names(self.flags),
            "online": self.online,
            "capacity_used": self.capacity_used,
            "tasks": [[*key, attempt] for key, attempt in self.tasks.items()],
            "host_resources": {k: res[k] for k in TABLE_RESOURCES if k in res},
        }

    def to_json(self, full: bool = True) -> dict[str, Any]:
        data = self.settings()
        data["flags"] = int(self.flags)
        data["state"] = state_names(self.flags)
        data["online"] = self.online
        data["capacity_used"] = self.capacity_used
        data["tasks"] = [[*key, attempt] for key, attempt in self.tasks.items()]
        # the original's idle_time / busy_time: since when idle, and the last task start or end
        data["idle_time"] = int(self.idle_since)
        data["busy_time"] = int(self.task_start_finish_time) if self.tasks else 0
        if full:
            data["host_resources"] = self.host_resources
        return data


TABLE_RESOURCES = ("cpu_idle", "mem_total_mb", "mem_free_mb", "hdd_total_gb", "hdd_free_gb")

_SETTING_FIELDS = frozenset(
    f
    for f in Render.__dataclass_fields__  # type: ignore[attr-defined]
    if f
    not in (
        "identity",
        "proven",
        "log",
        "host_resources",
        "history",
        "tasks",
        "capacity_used",
        "tickets_usage",
        "task_start_finish_time",
        "sick_records",
        "idle_since",
        "no_task_events",
        "overload_since",
        "overload_events",
        "wol_operation_time",
        "wake_attempts",
        "push_seq",
    )
)
