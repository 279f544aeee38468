"""afserver's watchdog: every child proves that its loop runs, and one that stops proving
it (a call that never returns, SIGSTOP, a deadlock) is killed and started again.

A child touches its file (AFSERVER_ALIVE, in afserver's private folder) from its loop, at
most once a second; the supervisor looks at the files' times. A file and a stat are all it
costs: no socket, no thread that would go on beating while the loop is stuck."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

ENV = "AFSERVER_ALIVE"
BEAT_SEC = 1.0


class Beat:
    """Called from a loop on every pass; touches the file when a beat is due."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.next = 0.0

    @property
    def due(self) -> float:
        """When the loop should wake for the next beat at the latest (never, unwatched)."""
        return self.next if self.path is not None else float("inf")

    def __call__(self, now: float) -> None:
        """`now`: the loop's monotonic clock."""
        if self.path is None or now < self.next:
            return
        self.next = now + BEAT_SEC
        try:
            os.utime(self.path)
        except OSError:  # afserver went, or removed its folder: nobody to tell
            self.path = None


async def beat_forever(beat: Beat) -> None:
    """An asyncio process's beat: a task on its event loop, so a loop held by a call that
    never returns stops beating. (asyncio is imported here: afserver's supervisor, which
    imports this module, stays without it.)"""
    import asyncio

    while True:
        beat(time.monotonic())
        await asyncio.sleep(BEAT_SEC)


def beat_from_env(environ: Mapping[str, str] | None = None) -> Beat:
    """The beat afserver asked of this process; one that does nothing when it was started
    by hand (an afrender on a farm host, a test)."""
    env = os.environ if environ is None else environ
    return Beat(env.get(ENV) or None)


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
