"""What clients may cost the gateway: bytes of request bodies held at once, and log lines.

Both are bounded whatever the clients send, so that a burst of large or bad requests can
neither push the process past its memory budget nor flood the server's log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PEERS_SHOWN = 5  # peers named in a summary line; the others are only counted
PEERS_KEPT = 1000  # distinct peers remembered per kind and period


class Budget:
    """Bytes of request bodies buffered at once, over all connections.

    A body is taken from the budget before it is allocated and given back once its answer
    is written. Large bodies may not take the last ``keep`` bytes, so that small requests
    (a ``get``, an action) are still served while large submissions fill the rest."""

    def __init__(self, total: int, keep: int, small: int) -> None:
        self.total = total
        self.free = total
        self.keep = keep
        self.small = small

    def take(self, size: int) -> bool:
        floor = 0 if size <= self.small else self.keep
        if self.free - size < floor:
            return False
        self.free -= size
        return True

    def give(self, size: int) -> None:
        self.free = min(self.total, self.free + size)


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

    def flush(self) -> None:
        """Sum up the periods that ended; call it every ``period`` seconds or so."""
        now = self.clock()
        for kind, current in list(self._periods.items()):
            if now - current.start >= self.period:
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
