"""Sorted indexes the solver keeps so that a start costs a look at a few nodes, not a sort of
every render and every job (issue 8: a farm of 10,000 renders and thousands of jobs).

``ReadyRenders`` holds the renders that can take a task, in most-ready order, across solves:
a solve looks again only at renders the farm touched since (a task ended, one registered) or
at all of them after a change it cannot follow (an action, the periodic refresh).
``Ranked`` is one level of the job tree (a branch's children and jobs, a branch's users, a
user's jobs) in solving order; after a start or a finish only the nodes on that job's path
move, so the scheduler keeps the levels from solve to solve (Solver.solve, keep_ranking).
Each solve walks a copy of the order (``view``) from its head; a node that cannot start
anything this time is passed (``first`` moves on), and a node that started a task moves
further down, never up, so the passed ones stay a prefix. Both are plain sorted lists:
bisect to find, insert and remove.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterator
from typing import Any

from workers.scheduler.renders import RenderFlag

ONL = RenderFlag.ONL
NOT_READY = RenderFlag.SIC | RenderFlag.WFL


class PoolFacts:
    """What a render inherits from its pool chain, looked up once per pool per solve."""

    __slots__ = ("capacity", "max_tasks", "priority", "not_ready")

    def __init__(self, pools: Any, path: str) -> None:
        self.capacity = pools.value(path, "capacity_host", -1)
        self.max_tasks = max(1, pools.value(path, "max_tasks_host", 1))
        self.priority = pools.priority(path)
        self.not_ready = pools.not_ready(path)


class ReadyRenders:
    """Ready renders by the original's MostReadyRender order (the job-independent part)."""

    def __init__(self) -> None:
        self.order: list[tuple[Any, ...]] = []
        self.keys: dict[int, tuple[Any, ...]] = {}
        self.facts: dict[str, PoolFacts] = {}
        self.free: dict[float, int] = {}  # free capacity -> how many ready renders have it
        # Less free capacity than the smallest task of any job needs: not ready. A farm
        # whose renders all run a task would otherwise stay "ready" with a little room left,
        # and every job would look at every one of them in every solve.
        self.min_free: float = 0

    def max_free(self) -> float:
        """The most free capacity any ready render has (inf: one has no capacity limit)."""
        return max(self.free, default=-1)

    def pool(self, pools: Any, path: str) -> PoolFacts:
        facts = self.facts.get(path)
        if facts is None:
            facts = self.facts[path] = PoolFacts(pools, path)
        return facts

    def key(self, pools: Any, r: Any) -> tuple[Any, ...] | None:
        """The render's place in the order, or None when it cannot take a task (the same
        conditions as solver.render_not_ready, from cached pool facts)."""
        flags = r.flags
        if not flags & ONL or flags & NOT_READY or r.priority <= 0:
            return None
        facts = self.pool(pools, r.pool)
        if facts.not_ready is not None:
            return None
        capacity = r.capacity_host if r.capacity_host >= 0 else facts.capacity
        if capacity >= 0 and (
            capacity <= r.capacity_used or capacity - r.capacity_used < self.min_free
        ):
            return None
        max_tasks = r.max_tasks_host if r.max_tasks_host >= 0 else facts.max_tasks
        if len(r.tasks) >= max_tasks:
            return None
        return (
            -facts.priority,
            len(r.tasks),
            -(capacity - r.capacity_used),
            -r.priority,
            r.task_start_finish_time,
            -capacity,
            -max_tasks,
            r.name,
            r.id,
        )

    def look(self, pools: Any, r: Any) -> bool:
        """Put the render where it belongs now, or take it out; True when it is ready."""
        self.discard(r.id)
        key = self.key(pools, r)
        if key is None:
            return False
        self.keys[r.id] = key
        insort(self.order, key)
        self._count(key, 1)
        return True

    @staticmethod
    def _free(key: tuple[Any, ...]) -> float:
        """Free capacity from a key: -key[2], unless the render has no limit (key[5] = 1)."""
        return float("inf") if key[5] > 0 else -key[2]

    def _count(self, key: tuple[Any, ...], sign: int) -> None:
        free = self._free(key)
        left = self.free.get(free, 0) + sign
        if left:
            self.free[free] = left
        else:
            del self.free[free]

    def discard(self, render_id: int) -> None:
        key = self.keys.pop(render_id, None)
        if key is not None:
            del self.order[bisect_left(self.order, key)]
            self._count(key, -1)

    def rebuild(self, pools: Any, renders: Any) -> None:
        self.keys = {}
        self.free = {}
        for r in renders:
            key = self.key(pools, r)
            if key is not None:
                self.keys[r.id] = key
                self._count(key, 1)
        self.order = sorted(self.keys.values())

    def ids(self) -> Iterator[int]:
        for key in self.order:
            yield key[-1]

    def __len__(self) -> int:
        return len(self.order)


class Ranked:
    """One level of the job tree in solving order. Entries are (key, seq, node): seq is the
    node's place when the level was built, so equal keys keep the order a stable sort of
    that list would give, however often a node moves. Entries compare as tuples: the seq
    is unique, so two entries never get as far as comparing their nodes."""

    __slots__ = ("order", "entries", "key", "view", "first")

    def __init__(self, key: Callable[[Any], tuple[Any, ...]]) -> None:
        self.order: list[tuple[Any, ...]] = []
        self.entries: dict[int, tuple[Any, ...]] = {}
        self.key = key
        self.view: list[tuple[Any, ...]] = []  # this solve's walk (begin)...
        self.first = 0  # ...of which the nodes before this one were passed

    def build(self, nodes: list[Any]) -> Ranked:
        for seq, node in enumerate(nodes):
            self.entries[id(node)] = (self.key(node), seq, node)
        self.order = sorted(self.entries.values())
        return self.begin()

    def begin(self) -> Ranked:
        """A new solve: every node is in the walk again."""
        self.view = list(self.order)
        self.first = 0
        return self

    def head(self) -> Any:
        """The first node of this solve's walk not passed yet, or None."""
        return self.view[self.first][2] if self.first < len(self.view) else None

    def pass_head(self) -> None:
        """The head has nothing to start in this solve."""
        self.first += 1

    def move(self, node: Any) -> None:
        """The node's key changed (a task of it started or ended): put it where it belongs
        now, in the order and, if it is still in this solve's walk, in the walk."""
        entry = self.entries.get(id(node))
        if entry is None:
            return
        moved = (self.key(node), entry[1], node)
        if moved == entry:
            return
        self.entries[id(node)] = moved
        del self.order[bisect_left(self.order, entry)]
        insort(self.order, moved)
        view, first = self.view, self.first
        i = bisect_left(view, entry, first)
        if i < len(view) and view[i] is entry:  # not passed in this solve
            del view[i]
            insort(view, moved, first)


class Levels(dict[Any, Ranked]):
    """The levels of one ranking: a branch's by its id, a user's jobs in a branch by (branch
    id, user id). ``users`` finds every level of users a user is in: when it starts a task
    its time_solved changes in all of them, not only in the started job's branch."""

    def __init__(self) -> None:
        super().__init__()
        self.users: dict[int, list[Ranked]] = {}

    def add_users(self, level: Ranked, users: list[Any]) -> None:
        """`level` holds these users."""
        for user in users:
            self.users.setdefault(id(user), []).append(level)
