"""What clients may cost the gateway: bytes of requests held at once, and log lines.

Both are bounded whatever the clients send, so that a burst of large or bad requests can
neither push the process past its memory budget nor flood the server's log.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PEERS_SHOWN = 5  # peers named in a summary line; the others are only counted
PEERS_KEPT = 1000  # distinct peers remembered per kind and period


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


@dataclass(slots=True)
class _Period:
    start: float
    count: int = 0
    peers: set[str] = field(default_factory=set)


class Summarised:
    """Repeated faults of one kind (bad headers, clients dropped for silence, …): the first
    of a period is logged with its peer and reason, the rest are only counted and summed up
    in one line when the period ends. At most two lines per kind per ``period`` seconds."""

    def __init__(
        self,
        log: logging.Logger,
        period: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        level: int = logging.INFO,
    ) -> None:
        self.log = log
        self.period = period
        self.clock = clock
        self.level = level
        self._periods: dict[str, _Period] = {}

    def note(self, kind: str, peer: str, text: str) -> None:
        now = self.clock()
        current = self._periods.get(kind)
        if current is not None and now - current.start < self.period:
            current.count += 1
            if len(current.peers) < PEERS_KEPT:
                current.peers.add(peer)
            return
        if current is not None:
            self._summary(kind, current, now)
        self._periods[kind] = _Period(now)
        self.log.log(self.level, "%s from %s: %s", kind, peer, text)

    def flush(self, everything: bool = False) -> None:
        """Sum up the periods that ended (all of them when the process stops); call it every
        ``period`` seconds or so."""
        now = self.clock()
        for kind, current in list(self._periods.items()):
            if everything or now - current.start >= self.period:
                self._summary(kind, current, now)
                del self._periods[kind]

    def _summary(self, kind: str, current: _Period, now: float) -> None:
        if not current.count:
            return
        peers = sorted(current.peers)
        shown = ", ".join(peers[:PEERS_SHOWN])
        if len(peers) > PEERS_SHOWN:
            shown += f" and {len(peers) - PEERS_SHOWN} more"
        self.log.log(
            self.level,
            "%s: %d more in the last %.0f s (from %s)",
            kind,
            current.count,
            now - current.start,
            shown,
        )


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
