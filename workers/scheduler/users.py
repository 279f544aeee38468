"""Users: created on first contact, as the original creates them on a job's first mention."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class User:
    id: int
    name: str
    host_name: str = ""
    priority: int = 99
    time_register: float = 0.0
    time_activity: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "host_name": self.host_name,
            "priority": self.priority,
            "time_register": self.time_register,
            "time_activity": self.time_activity,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> User:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})  # type: ignore[attr-defined]
