"""Live farm changes for browsers: the web process registers with the scheduler as one
monitor while a page listens, and fans each push out to the open Server-Sent Events streams.

ZeroMQ stays on one thread (the feed's own); pushes cross into the server's event loop with
`call_soon_threadsafe`. A page that cannot keep up (its queue fills) gets one `resync` event
instead of a silent gap, and reloads what it shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import zmq

from auth.curve import ClientKeys, secure_client
from broker import protocol as P

log = logging.getLogger("web.live")

REGISTER_SEC = 5.0  # the monitor's heartbeat (the scheduler drops it after 15 s)
# The monitor stays registered this long after the last page left: a page that opens
# another (the jobs list, then a job) misses nothing that changes between the two.
LINGER_SEC = 10.0
QUEUE_MAX = 256  # pushes a page may lag behind before it is told to resync
KEEPALIVE_SEC = 15.0


class LiveFeed:
    def __init__(
        self,
        endpoint: str,
        message_size_max: int = 64 * 1024 * 1024,
        curve: ClientKeys | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.curve = curve
        self.message_size_max = message_size_max
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.monitor_id = 0
        self.pushes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_rx: zmq.Socket  # made by start()
        self._wake_tx: zmq.Socket

    # --- the event loop's side -----------------------------------------------------------

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        # the feed's thread sleeps in its poll until a push or its next registration; stop()
        # wakes it through this pair (each end used by one thread only)
        ctx = zmq.Context.instance()
        address = f"inproc://live-feed-wake-{uuid.uuid4().hex}"
        self._wake_rx = ctx.socket(zmq.PAIR)
        self._wake_rx.bind(address)
        self._wake_tx = ctx.socket(zmq.PAIR)
        self._wake_tx.setsockopt(zmq.LINGER, 0)
        self._wake_tx.connect(address)
        self._thread = threading.Thread(target=self._run, name="live-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._wake()
            self._thread.join(2.0)
            self._wake_tx.close(0)

    def _wake(self) -> None:
        """The feed's thread looks at the stop flag and the subscribers (the event loop's
        thread calls this, the only one to use the pair's sending end)."""
        if self._thread is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._wake_tx.send(b"", zmq.NOBLOCK)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_MAX)
        self.subscribers.add(queue)
        if len(self.subscribers) == 1:  # the first page: the feed registers now
            self._wake()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.subscribers.discard(queue)
        if not self.subscribers:  # the last page went: the scheduler need push nothing
            self._wake()

    def _publish(self, change: dict[str, Any]) -> None:
        for queue in self.subscribers:
            if queue.full():
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait({"resync": True})
            else:
                queue.put_nowait(change)

    async def stream(self) -> AsyncIterator[str]:
        """One page's events: a hello, then every change, with keepalives between."""
        queue = self.subscribe()
        try:
            yield "retry: 2000\n\n"
            yield f"event: hello\ndata: {json.dumps({'monitor_id': self.monitor_id})}\n\n"
            while True:
                try:
                    change = await asyncio.wait_for(queue.get(), KEEPALIVE_SEC)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                kind = "resync" if change.get("resync") else "farm"
                yield f"event: {kind}\ndata: {json.dumps(change, separators=(',', ':'))}\n\n"
        finally:
            self.unsubscribe(queue)

    # --- the feed's thread ---------------------------------------------------------------

    def _run(self) -> None:
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IDENTITY, b"M:" + uuid.uuid4().hex.encode())
        secure_client(sock, self.curve)
        sock.connect(self.endpoint)
        hello = {"user_name": "web", "host_name": socket.gethostname().lower()}
        next_register = 0.0
        registered = False
        linger_until = 0.0  # registered with no page listening: until then
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_rx, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                # a monitor only while a page listens (and LINGER_SEC after): with none, the
                # scheduler would build and push every change (and resources) for nobody
                if self.subscribers:
                    linger_until = now + LINGER_SEC
                wanted = now < linger_until
                if wanted and now >= next_register:
                    with contextlib.suppress(zmq.Again):
                        sock.send_multipart(
                            P.message(P.MsgType.MONITOR_REGISTER, hello, 1), zmq.NOBLOCK
                        )
                    next_register, registered = now + REGISTER_SEC, True
                elif not wanted and registered:
                    with contextlib.suppress(zmq.Again):
                        sock.send_multipart(
                            P.message(P.MsgType.MONITOR_DEREGISTER, hello, 2), zmq.NOBLOCK
                        )
                    next_register, registered = 0.0, False
                    log.info("no page listens: monitor %s deregistered", self.monitor_id)
                wake_at = min(next_register, linger_until)
                timeout = max(1, int((wake_at - now) * 1000)) if wanted else None
                ready = dict(poller.poll(timeout))
                if self._wake_rx in ready:
                    with contextlib.suppress(zmq.Again):
                        while True:
                            self._wake_rx.recv(zmq.NOBLOCK)
                if sock not in ready:
                    continue
                while True:  # all that came meanwhile, then the next poll
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._receive(frames)
            if registered:
                with contextlib.suppress(zmq.Again):
                    sock.send_multipart(
                        P.message(P.MsgType.MONITOR_DEREGISTER, hello, 2), zmq.NOBLOCK
                    )
        finally:
            sock.close(0)
            self._wake_rx.close(0)

    def _receive(self, frames: list[bytes]) -> None:
        if len(frames) != 2:
            return
        try:
            header = P.unpack_header(frames[0])
            body = P.unpack_body(frames[1], self.message_size_max)
        except P.ProtocolError as exc:
            log.warning("bad message from the server: %s", exc)
            return
        if header.type == P.MsgType.REPLY and isinstance(body, dict) and "id" in body:
            if body["id"] != self.monitor_id:
                log.info("registered as monitor %s", body["id"])
            self.monitor_id = body["id"]
        elif header.type == P.MsgType.MONITOR_EVENTS and isinstance(body, dict):
            self.pushes += 1
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self._publish, body)
        elif header.type == P.MsgType.ERROR:
            log.warning("the server refused the monitor: %s", body)
