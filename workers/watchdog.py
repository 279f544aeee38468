"""afserver's watchdog: every child proves that its loop runs, and one that stops proving
it (a call that never returns, SIGSTOP, a deadlock) is killed and started again.

A child touches its file (AFSERVER_ALIVE, in afserver's private folder) from its loop, at
most every AFSERVER_ALIVE_SEC (an eighth of af_watchdog_sec, 1 to 5 s: 3.75 s by default);
the supervisor looks at the files' times. A file and a stat are all it
costs: no socket, no thread that would go on beating while the loop is stuck."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

ENV = "AFSERVER_ALIVE"
EVERY_ENV = "AFSERVER_ALIVE_SEC"
BEAT_SEC = 1.0  # without EVERY_ENV
BEATS_PER_WATCH = 8  # beats within af_watchdog_sec: a loop late by a few is not taken as hung


def beat_every(hang_sec: float) -> float:
    """How often a child beats when a silence of `hang_sec` counts as hung."""
    return min(5.0, max(1.0, hang_sec / BEATS_PER_WATCH))


class Beat:
    """Called from a loop on every pass; touches the file when a beat is due."""

    def __init__(self, path: str | None, every: float = BEAT_SEC) -> None:
        self.path = path
        self.every = every
        self.next = 0.0

    @property
    def due(self) -> float:
        """When the loop should wake for the next beat at the latest (never, unwatched)."""
        return self.next if self.path is not None else float("inf")

    def __call__(self, now: float) -> None:
        """`now`: the loop's monotonic clock."""
        if self.path is None or now < self.next:
            return
        self.next = now + self.every
        try:
            os.utime(self.path)
        except OSError:  # afserver went, or removed its folder: nobody to tell
            self.path = None


async def beat_forever(beat: Beat, healthy: Callable[[], bool] | None = None) -> None:
    """An asyncio process's beat: a task on its event loop, so a loop held by a call that
    never returns stops beating. (asyncio is imported here: afserver's supervisor, which
    imports this module, stays without it.)"""
    import asyncio

    while True:
        if healthy is None or healthy():
            beat(time.monotonic())
        await asyncio.sleep(beat.every)


def beat_from_env(environ: Mapping[str, str] | None = None) -> Beat:
    """The beat afserver asked of this process; one that does nothing when it was started
    by hand (an afrender on a farm host, a test)."""
    env = os.environ if environ is None else environ
    try:
        every = float(env.get(EVERY_ENV) or BEAT_SEC)
    except ValueError:
        every = BEAT_SEC
    return Beat(env.get(ENV) or None, max(0.1, every))


def prepare(folder: str, name: str) -> Path:
    """A child's file, made (or touched) when it starts: its time counts from the start."""
    path = Path(folder) / ("".join(c if c.isalnum() else "_" for c in name) + ".alive")
    path.touch()
    return path


def silent_for(path: Path) -> float:
    """Seconds since the child's last beat (0 when the file cannot be read: not judged)."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except OSError:
        return 0.0
