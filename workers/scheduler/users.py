"""Users: created on first contact, with the limits and error policy their jobs inherit."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workers.scheduler.jobs import Job

# What the store keeps of a user; counters and the job list are rebuilt.
_SETTINGS = [
    "id",
    "name",
    "host_name",
    "priority",
    "max_running_tasks",
    "max_running_tasks_per_host",
    "paused",
    "solve_method",
    "solve_need",
    "errors_retries",
    "errors_avoid_host",
    "errors_task_same_host",
    "errors_forgive_time",
    "jobs_life_time",
    "time_register",
    "time_activity",
    "custom_data",
]


@dataclass(slots=True, eq=False)
class User:
    id: int
    name: str
    host_name: str = ""
    priority: int = 99
    max_running_tasks: int = -1
    max_running_tasks_per_host: int = -1
    paused: bool = False
    solve_method: str = "solve_order"  # a user's jobs run in list order by default
    solve_need: str = "solve_capacity"
    errors_retries: int = 3  # af_task_error_retries
    errors_avoid_host: int = 3  # af_errors_avoid_host
    errors_task_same_host: int = 3  # af_task_errors_same_host
    errors_forgive_time: int = 18000  # af_errors_forgivetime
    jobs_life_time: int = 0
    custom_data: str = ""  # JSON text: emails, events to send (the events service reads it)
    time_register: float = 0.0
    time_activity: float = 0.0
    time_solved: float = 0.0
    jobs: list[Job] = field(default_factory=list)  # the user's job order
    running_tasks: int = 0
    running_capacity: int = 0
    running_per_render: Counter[int] = field(default_factory=Counter)

    def add_job(self, job: Job) -> None:
        """A new job goes before the first job of lower priority (FIFO within a priority)."""
        if not self.jobs or self.jobs[-1].priority >= job.priority:
            self.jobs.append(job)  # the common case, and every restore in id order
            return
        for i, other in enumerate(self.jobs):
            if other.priority < job.priority:
                self.jobs.insert(i, job)
                return
        self.jobs.append(job)

    def to_json(self) -> dict[str, Any]:
        data = {key: getattr(self, key) for key in _SETTINGS}
        data["jobs_num"] = len(self.jobs)
        data["running_tasks"] = self.running_tasks
        data["running_capacity"] = self.running_capacity
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> User:
        return cls(**{k: data[k] for k in _SETTINGS if k in data})
