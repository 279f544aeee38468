"""uvicorn's server, woken once a second at rest instead of ten times.

uvicorn's `Server.main_loop` sleeps 0.1 s between ticks only to see `should_exit` soon and to
renew the Date header every tenth tick; that is ten wakes a second of an idle process. Here
the loop waits on an event that the exit signal sets (through the loop's own wake-up, as a
signal handler may not touch asyncio directly), else a second: the Date header still
changes every second and a stop is seen at once. `on_tick(0)` keeps uvicorn's own work of a
tick (headers, notify callback, max requests), so nothing else of uvicorn changes."""

from __future__ import annotations

import asyncio
import contextlib
from types import FrameType
from typing import Any

import uvicorn

TICK_SEC = 1.0


class RestfulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit = asyncio.Event()

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._exit = asyncio.Event()
        while not await self.on_tick(0):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), TICK_SEC)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._exit.set)


def run(app: Any, host: str, port: int) -> None:
    """uvicorn.run(app, host, port) without logs of its own or an access log."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    RestfulServer(config).run()
