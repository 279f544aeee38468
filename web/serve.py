"""uvicorn's server, woken once a second at rest instead of ten times.

uvicorn's `Server.main_loop` sleeps 0.1 s between ticks only to see `should_exit` soon and to
renew the Date header every tenth tick; that is ten wakes a second of an idle process. Here
the loop waits on an event that the exit signal sets (through the loop's own wake-up, as a
signal handler may not touch asyncio directly), else a second: the Date header still
changes every second and a stop is seen at once. `on_tick(0)` keeps uvicorn's own work of a
tick (headers, notify callback, max requests), so nothing else of uvicorn changes.

`beside`: another asyncio server of the process on the same loop (the gateway, when
gateway.gateway_in_web), started before uvicorn and stopped after it. Each goes on without
the other: when the web's port cannot be had, the loop serves `beside` until a stop signal
and beats the watchdog here (the app's beat went with its lifespan); when `beside` cannot
serve, the web serves alone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

import uvicorn

from workers import watchdog

log = logging.getLogger("web")

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


class Beside(Protocol):
    """Another server on the web's loop (gateway.main.InWeb)."""

    name: str  # for the log: "the gateway"

    async def start(self) -> bool:
        """Serving; False when it cannot (having said why)."""

    async def stop(self) -> None: ...


def run(
    app: Any,
    host: str,
    port: int,
    beside: Beside | None = None,
    healthy: Callable[[], bool] | None = None,
) -> None:
    """uvicorn.run(app, host, port) without logs of its own or an access log, and `beside`
    on the same loop. SystemExit when uvicorn cannot serve and `beside` is not serving.
    `healthy`: as the app's, for the beat while only `beside` serves."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = RestfulServer(config)
    if beside is None:
        server.run()
        return
    # uvicorn restores the handlers it found and raises the signal it caught again: with its
    # own handler found, that stops nothing before `beside` is stopped (nor a signal that
    # comes before uvicorn's handlers are in place)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, server.handle_exit)
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(_serve_beside(server, beside, port, healthy))


async def _serve_beside(
    server: RestfulServer, beside: Beside, port: int, healthy: Callable[[], bool] | None
) -> None:
    serving = await beside.start()
    try:
        await server.serve()
    except SystemExit:  # uvicorn could not serve (the port taken)
        if not serving:
            raise
        log.error("web: not serving on port %d; this process still serves %s", port, beside.name)
        alive = asyncio.create_task(watchdog.beat_forever(watchdog.beat_from_env(), healthy))
        await server.main_loop()  # until a stop signal
        alive.cancel()
    finally:
        if serving:
            await beside.stop()
