"""Trouble said once, then counted: a peer that repeats a bad message must not fill the log.

Each kind of trouble gets its first line at once; what repeats within `every` seconds is
counted and said as one summary line when the time is up (at the next occurrence, or when
the owner's housekeeping calls `flush`). Kinds are a few fixed strings, never peer data, so
the table stays small whatever peers send.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Kind:
    said_at: float
    repeats: int = 0
    last_text: str = ""


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
        self.kinds: dict[str, _Kind] = {}

    def say(self, kind: str, text: str) -> None:
        """`kind` groups the repeats (a fixed string); `text` may name the peer."""
        now = self.clock()
        seen = self.kinds.get(kind)
        if seen is None:
            self.kinds[kind] = _Kind(now)
            self.logger.log(self.level, "%s", text)
            return
        seen.repeats += 1
        seen.last_text = text
        if now - seen.said_at >= self.every:
            self._summary(kind, seen, now)

    def flush(self) -> None:
        """Say the summaries that are due; quiet kinds are forgotten, so the next one of
        them is said at once again."""
        now = self.clock()
        for kind, seen in list(self.kinds.items()):
            if now - seen.said_at < self.every:
                continue
            if seen.repeats:
                self._summary(kind, seen, now)
            else:
                del self.kinds[kind]

    def _summary(self, kind: str, seen: _Kind, now: float) -> None:
        self.logger.log(
            self.level,
            "%s: %d more in the last %.0f s, the latest: %s",
            kind,
            seen.repeats,
            now - seen.said_at,
            seen.last_text,
        )
        seen.said_at = now
        seen.repeats = 0
