"""Branches: job folders that take part in solving (SPEC B §1.9).

The root "/" solves its jobs directly, by need; a child created under it solves per user.
A job lands in its exact branch if it exists, else in the deepest existing ancestor; when
that one may create children, one child level is created for it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workers.scheduler.jobs import Job

ROOT = "/"
_BAD_CHARS = re.compile(r'[<>:"|?*\x00-\x1f]')


def filter_path(path: str) -> str:
    """`\\`→`/`, empty, `.` and `..` parts dropped, invalid filename characters → `_`."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/" + "/".join(_BAD_CHARS.sub("_", p) for p in parts)


@dataclass(slots=True, eq=False)
class Branch:
    path: str
    parent: Branch | None = None
    create_childs: bool = False
    solve_jobs: bool = False
    solve_method: str = "solve_priority"
    solve_need: str = "solve_tasksnum"
    priority: int = 99
    max_tasks_per_second: int = -1
    max_running_tasks: int = -1
    max_running_tasks_per_host: int = -1
    paused: bool = False
    time_creation: float = 0.0
    time_solved: float = 0.0
    tps: list[int] = field(default_factory=lambda: [0, 0])  # second, tasks started in it
    children: list[Branch] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    running_tasks: int = 0
    running_capacity: int = 0
    running_per_render: Counter[int] = field(default_factory=Counter)
    # per user running counts in this branch, for per-user need when not solving jobs
    user_running_tasks: Counter[str] = field(default_factory=Counter)
    user_running_capacity: Counter[str] = field(default_factory=Counter)

    def chain(self) -> list[Branch]:
        node: Branch | None = self
        out = []
        while node is not None:
            out.append(node)
            node = node.parent
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "solve_jobs": self.solve_jobs,
            "solve_method": self.solve_method,
            "solve_need": self.solve_need,
            "create_childs": self.create_childs,
            "jobs": len(self.jobs),
            "running_tasks": self.running_tasks,
            "children": [c.path for c in self.children],
        }


class Branches:
    def __init__(self, now: float) -> None:
        # The root as the original creates it; max_tasks_per_second is unlimited here (the
        # original's 100 was its pace; SPEC A2 keeps it only as a limit a site may set).
        self.root = Branch(ROOT, create_childs=True, solve_jobs=True, time_creation=now)
        self.by_path: dict[str, Branch] = {ROOT: self.root}

    def place(self, path: str, now: float) -> Branch:
        """The branch a job submitted with `path` lands in (creating one level if allowed)."""
        path = filter_path(path)
        exact = self.by_path.get(path)
        if exact is not None:
            return exact
        parts = path.strip("/").split("/")
        node = self.root
        for depth in range(1, len(parts) + 1):
            candidate = self.by_path.get("/" + "/".join(parts[:depth]))
            if candidate is None:
                break
            node = candidate
        if not node.create_childs:
            return node
        depth = 0 if node is self.root else len(node.path.strip("/").split("/"))
        child_path = "/" + "/".join(parts[: depth + 1])
        child = Branch(
            child_path,
            parent=node,
            solve_method=node.solve_method,
            solve_need=node.solve_need,
            solve_jobs=node.solve_jobs if node is not self.root else False,
            time_creation=now,
        )
        node.children.append(child)
        self.by_path[child_path] = child
        return child
