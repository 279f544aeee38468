"""The statistics writer's doorbell: a Unix datagram socket in afserver's private folder.

The scheduler rings it after a commit that put rows in the store's outbox; the writer sleeps
on it instead of looking at the outbox twice a second, then gathers for a moment so rows
still come in batches. A ring carries nothing: a lost one (the writer restarting, its
buffer full because it is already awake) is made up by the writer's look at start and its
long safety-net wait. Outside afserver (no private folder) there is no doorbell, and the
writer looks every POLL_SEC as before."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from broker import workerlink

NAME = "stats.bell"


def path_from_env() -> Path | None:
    """The doorbell's path in afserver's private folder, beside the workers' socket."""
    link = workerlink.from_env()
    if link is None or not link.endpoint.startswith("ipc://"):
        return None
    return Path(link.endpoint.removeprefix("ipc://")).parent / NAME


class Doorbell:
    """The writer's end: bound to the path, waited on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a writer before this one (killed) left it
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self._self = Ringer(path)  # stop() rings from the signal handler: the wait ends

    def wait(self, timeout: float) -> bool:
        """Until a ring or `timeout`; True when rung. Every ring that came is taken."""
        self.sock.settimeout(timeout)
        try:
            self.sock.recv(16)
        except TimeoutError:
            return False
        self.sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self.sock.recv(16)
        return True

    def ring(self) -> None:
        self._self.ring()

    def close(self) -> None:
        self.sock.close()
        self._self.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class Ringer:
    """The scheduler's end: one unbound datagram socket, never blocking, never failing."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)

    def ring(self) -> None:
        with contextlib.suppress(OSError):  # no writer there now, or it is rung already
            self.sock.sendto(b"!", self.path)

    def close(self) -> None:
        self.sock.close()
