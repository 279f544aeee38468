"""Trouble said once, then counted: a peer that repeats a bad message must not fill the log.

The first of a kind in a period is logged whole, with its peer; what repeats within
`every` seconds is counted, with the peers it came from, and said as one summary line when
the period ends (at the next occurrence after it, or when the owner's housekeeping calls
`flush`). At most two lines per kind per period. Kinds are a few fixed strings, never
peer data, and the peers kept per period are bounded, so the tables stay small whatever
peers send. The broker, the scheduler, its checkpoints and the gateway all use it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PEERS_SHOWN = 5  # peers named in a summary line; the others are only counted
PEERS_KEPT = 1000  # distinct peers remembered per kind and period


@dataclass(slots=True)
class _Period:
    start: float
    count: int = 0
    peers: set[str] = field(default_factory=set)
    latest: str = ""


class RareLog:
    def __init__(
        self,
        logger: logging.Logger,
        every: float = 10.0,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.every = every
        self.level = level
        self.clock = clock
        self._periods: dict[str, _Period] = {}

    def say(self, kind: str, text: str, peer: str = "") -> None:
        """`kind` groups the repeats (a fixed string); `text` and `peer` are this one's."""
        now = self.clock()
        current = self._periods.get(kind)
        if current is not None and now - current.start < self.every:
            current.count += 1
            current.latest = text
            if peer and len(current.peers) < PEERS_KEPT:
                current.peers.add(peer)
            return
        if current is not None:
            self._summary(kind, current, now)
        self._periods[kind] = _Period(now)
        if peer:
            self.logger.log(self.level, "%s from %s: %s", kind, peer, text)
        else:
            self.logger.log(self.level, "%s", text)

    def flush(self, everything: bool = False) -> None:
        """Sum up the periods that ended (all of them when the process stops); call it
        every period or so. A kind then quiet is said in full again when it comes back."""
        now = self.clock()
        for kind, current in list(self._periods.items()):
            if everything or now - current.start >= self.every:
                self._summary(kind, current, now)
                del self._periods[kind]

    def _summary(self, kind: str, current: _Period, now: float) -> None:
        if not current.count:
            return
        if current.peers:
            peers = sorted(current.peers)
            shown = ", ".join(peers[:PEERS_SHOWN])
            if len(peers) > PEERS_SHOWN:
                shown += f" and {len(peers) - PEERS_SHOWN} more"
            last = f"(from {shown})"
        else:
            last = f"the latest: {current.latest}"
        self.logger.log(
            self.level,
            "%s: %d more in the last %.0f s, %s",
            kind,
            current.count,
            now - current.start,
            last,
        )
