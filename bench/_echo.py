"""The in-run reference of every bench: what a bare pyzmq ROUTER costs per message.

CPU seconds on shared machines vary 2x from day to day, so a figure alone says little; beside
the same machine's cost of the simplest thing that can answer a message, measured in the same
run, it says what our code adds. Two echoes, each a process of its own:

- ``raw``: sends every message back as it came (bench/broker.py's denominator);
- ``farm``: answers like a server that does nothing: a render's registration gets an id, its
  heartbeats a reply, a request an empty REPLY, so the same simulated renders and clients
  that drive afserver can drive it.

Both count what they answered; BROKER_STAT asks for the count (answered, never counted).

    python -m bench._echo raw|farm PORT
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import psutil
import zmq

from broker import protocol as P

ROOT = Path(__file__).resolve().parent.parent
_RENDER_TYPES = {
    P.MsgType.RENDER_REGISTER,
    P.MsgType.RENDER_UPDATE,
    P.MsgType.RENDER_BEAT,
    P.MsgType.RENDER_DEREGISTER,
}


def serve(kind: str, port: int) -> None:
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.setsockopt(zmq.SNDHWM, 200_000)
    router.setsockopt(zmq.RCVHWM, 200_000)
    router.bind(P.endpoint("127.0.0.1", port))
    parent = os.getppid()
    answered = 0
    ids: dict[bytes, int] = {}
    stat = P.pack_header(P.MsgType.BROKER_STAT)[2:4]
    empty = P.pack_body({})
    while os.getppid() == parent:  # the poll timeout lets an orphaned echo notice and exit
        if not router.poll(1000):
            continue
        while True:
            try:
                frames = router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if len(frames) > 1 and frames[1][2:4] == stat:
                header = P.unpack_header(frames[1])
                reply = P.message(P.MsgType.REPLY, {"answered": answered}, header.request_id)
                router.send_multipart([frames[0], *reply])
                continue
            answered += 1
            if kind == "raw" or len(frames) != 3:
                router.send_multipart(frames)
                continue
            header = P.unpack_header(frames[1])
            if header.type in _RENDER_TYPES:
                render_id = ids.setdefault(frames[0], len(ids) + 1)
                body = msgpack.packb({"id": render_id})
                reply_header = P.pack_header(P.MsgType.RENDER_EVENTS, header.request_id)
            else:
                body, reply_header = empty, P.pack_header(P.MsgType.REPLY, header.request_id)
            router.send_multipart([frames[0], reply_header, body])


class Echo:
    """An echo process on a free port: its CPU seconds and what it answered, on demand."""

    def __init__(self, kind: str, port: int) -> None:
        self.kind = kind
        self.port = port
        self.endpoint = P.endpoint("127.0.0.1", port)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench._echo", kind, str(port)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        self.ps = psutil.Process(self.proc.pid)
        self._ctx = zmq.Context.instance()
        self._dealer = self._ctx.socket(zmq.DEALER)
        self._dealer.setsockopt(zmq.LINGER, 0)
        self._dealer.connect(self.endpoint)
        self._asked = 0
        self.stat(timeout=15.0)  # up and answering

    def stat(self, timeout: float = 5.0) -> tuple[int, float]:
        """(messages answered, CPU seconds) now."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._asked += 1  # answers to earlier asks (before the echo was up) are stale
            self._dealer.send_multipart(P.message(P.MsgType.BROKER_STAT, {}, self._asked))
            while self._dealer.poll(250):
                frames = self._dealer.recv_multipart()
                if P.unpack_header(frames[0]).request_id != self._asked:
                    continue
                answered = msgpack.unpackb(frames[1])["answered"]
                times = self.ps.cpu_times()
                return answered, times.user + times.system
        raise RuntimeError(f"the {self.kind} echo on {self.endpoint} does not answer")

    def close(self) -> None:
        self._dealer.close(0)
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> Echo:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def per_message(before: tuple[int, float], after: tuple[int, float]) -> dict[str, Any]:
    """CPU µs per message answered between two Echo.stat() readings."""
    messages = after[0] - before[0]
    cpu = after[1] - before[1]
    return {
        "messages": messages,
        "cpu_sec": round(cpu, 3),
        "cpu_us_per_message": round(cpu * 1e6 / messages, 1) if messages else None,
    }


def ratio(value: float | None, reference: float | None) -> float | None:
    """A figure over its in-run reference (None when either is missing)."""
    if not value or not reference:
        return None
    return round(value / reference, 2)


def closed_loop(endpoint: str, seconds: float, identities: int = 1) -> dict[str, Any]:
    """Requests with one in flight per identity, for `seconds`: round trips per second and
    the latency p50 in ms (the client side of a reference)."""
    ctx = zmq.Context.instance()
    poller = zmq.Poller()
    dealers = []
    body = P.pack_body({"get": {"type": "users"}})
    for _ in range(identities):
        d = ctx.socket(zmq.DEALER)
        d.setsockopt(zmq.LINGER, 0)
        d.connect(endpoint)
        poller.register(d, zmq.POLLIN)
        dealers.append(d)
    sent: dict[Any, float] = {}
    latencies: list[float] = []
    try:
        for d in dealers:
            sent[d] = time.perf_counter()
            d.send_multipart([P.pack_header(P.MsgType.REQUEST, 1), body])
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for d, _ in poller.poll(100):
                d.recv_multipart()
                now = time.perf_counter()
                latencies.append(now - sent[d])
                sent[d] = now
                d.send_multipart([P.pack_header(P.MsgType.REQUEST, 1), body])
    finally:
        for d in dealers:
            d.close(0)
    latencies.sort()
    return {
        "identities": identities,
        "rtps": round(len(latencies) / seconds),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3) if latencies else None,
    }


def reference(seconds: float = 2.0, identities: int = 1) -> dict[str, Any]:
    """The raw echo measured now: round trips, p50 and CPU per message."""
    from bench._common import free_port

    with Echo("raw", free_port()) as echo:
        before = echo.stat()
        loop = closed_loop(echo.endpoint, seconds, identities)
        after = echo.stat()
    return {"raw_echo": {**loop, **per_message(before, after)}}


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
