"""The scheduler's hold on Python's garbage collector (workers/scheduler/collector.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from workers.scheduler import collector


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """No automatic collection during a test (it could free a cycle before the test freezes
    it); afterwards the rest of the session is collected as usual."""
    gc.disable()
    yield
    gc.unfreeze()
    gc.enable()


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_frozen_objects_are_out_of_the_collectors_rounds() -> None:
    alive = cycle()
    collector.freeze()
    assert gc.get_freeze_count() > 0
    gc.collect()
    assert alive() is not None  # garbage, but frozen: a full collection does not walk it


def test_collect_all_frees_a_cycle_that_died_after_it_was_frozen() -> None:
    dead = cycle()
    collector.freeze()
    pause, found = collector.collect_all()
    assert dead() is None and found >= 2
    assert pause >= 0 and gc.get_freeze_count() > 0  # what lives is frozen again
