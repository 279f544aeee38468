"""What clients may cost the gateway: bytes of requests held at once, and log lines.

Both are bounded whatever the clients send, so that a burst of large or bad requests can
neither push the process past its memory budget nor flood the server's log.
"""

from __future__ import annotations

import contextlib
import ctypes
from typing import Any


class Budget:
    """Bytes that requests may cost at once, over all connections.

    A request takes its cost before it is allocated and gives it back once its answer is
    written (``Lease``). Large requests may not take the last ``keep`` bytes, so that small
    ones (a ``get``, an action) are still served while large submissions fill the rest."""

    def __init__(self, total: int, keep: int, small: int) -> None:
        self.total = total
        self.free = total
        self.keep = keep
        self.small = small

    def take(self, size: int, floor: int) -> bool:
        if self.free - size < floor:
            return False
        self.free -= size
        return True

    def give(self, size: int) -> None:
        self.free = min(self.total, self.free + size)

    def lease(self) -> Lease:
        return Lease(self)


class Lease:
    """What one request holds of the budget, taken in steps as its cost becomes known."""

    __slots__ = ("budget", "held")

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.held = 0

    def take(self, size: int, into_kept: bool = False) -> bool:
        """Take `size` more; a large request leaves the kept room to small ones, except
        `into_kept`: the rest of a cost it could not know when it started (then it may not
        wait for room while holding some: two such requests would starve each other)."""
        large = self.held + size > self.budget.small
        if not self.budget.take(size, self.budget.keep if large and not into_kept else 0):
            return False
        self.held += size
        return True

    def release(self) -> None:
        self.budget.give(self.held)
        self.held = 0


def _load_trim() -> Any:
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL("libc.so.6").malloc_trim
    return None


_MALLOC_TRIM = _load_trim()


def trim() -> None:
    """Give the pages a large request freed back to the system (glibc keeps free pages
    inside its heap, where the many small objects of a decoded request lived), so the
    gateway's RSS returns to where it was."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
