"""Sorted indexes the solver keeps so that a start costs a look at a few nodes, not a sort of
every render and every job (issue 8: a farm of 10,000 renders and thousands of jobs).

``ReadyRenders`` holds the renders that can take a task, in most-ready order, across solves:
a solve looks again only at renders the farm touched since (a task ended, one registered) or
at all of them after a change it cannot follow (an action, the periodic refresh).
``Ranked`` is one level of the job tree (a branch's children and jobs, a branch's users, a
user's jobs) in solving order for one solve; after a start only the nodes on the started
job's path move. Both are plain sorted lists: bisect to find, insert and remove.
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

    __slots__ = ("order", "entries", "key")

    def __init__(self, key: Callable[[Any], tuple[Any, ...]]) -> None:
        self.order: list[tuple[Any, ...]] = []
        self.entries: dict[int, tuple[Any, ...]] = {}
        self.key = key

    def build(self, nodes: list[Any]) -> Ranked:
        for seq, node in enumerate(nodes):
            self.entries[id(node)] = (self.key(node), seq, node)
        self.order = sorted(self.entries.values())
        return self

    def remove_at(self, i: int) -> None:
        entry = self.order.pop(i)
        del self.entries[id(entry[2])]

    def move(self, node: Any) -> None:
        """The node's key changed (it started a task): put it where it belongs now."""
        entry = self.entries.get(id(node))
        if entry is None:
            return
        del self.order[bisect_left(self.order, entry)]
        entry = (self.key(node), entry[1], node)
        self.entries[id(node)] = entry
        insort(self.order, entry)
