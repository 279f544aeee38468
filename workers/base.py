"""Worker side of the broker protocol: announce, heartbeat, notice a dead broker, reconnect.

A worker process owns one ``WorkerConnection`` and runs one Poller loop (``WorkerLoop``):
requests from the broker go to a handler, other sockets (inproc posts) to their callbacks,
and the loop sleeps until the next deadline the connection or the owner asks for.
Requests come in batches and replies leave in batches (protocol.py): what a pass of the
loop answers or pushes waits in an outbox that the loop sends when the pass is done.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol

import zmq

from broker import protocol as P
from broker.workerlink import WorkerLink
from workers import watchdog

log = logging.getLogger("worker")

RECONNECT_MIN = 0.25
RECONNECT_MAX = 5.0
DRAIN_REQUESTS = 2000  # requests handled before the owner's tick gets a look in


class Handler(Protocol):
    def handle(
        self, client: bytes, header: P.Header, body: Any, proven: str | None = None
    ) -> None: ...


class WorkerConnection:
    """A DEALER to the broker's private workers' socket (workerlink.py)."""

    def __init__(
        self,
        ctx: zmq.Context,
        link: WorkerLink,
        service: str,
        *,
        heartbeat_sec: float = 1.0,
        liveness: int = 3,
        message_size_max: int = 64 * 1024 * 1024,
        identity: bytes | None = None,
    ) -> None:
        self.ctx = ctx
        self.link = link
        self.endpoint = link.endpoint
        self.service = service
        self.name = identity or f"W:{service}".encode()
        self.identity = self.name
        self.heartbeat_sec = heartbeat_sec
        self.liveness = liveness
        # at rest both sides beat slower (P.rest_heartbeat): the broker may be silent longer
        self.rest_sec = P.rest_heartbeat(heartbeat_sec)
        self.silence_limit = self.rest_sec * liveness
        self.last_request = float("-inf")  # when the broker last handed us requests
        self.last_beat = 0.0
        self.monitor: zmq.Socket | None = None  # the DEALER's connects: a broker come back
        self.connects_seen = 0
        self.message_size_max = message_size_max
        self.socket: zmq.Socket | None = None
        self.reconnect_delay = RECONNECT_MIN
        self.reconnect_at: float | None = None
        self.next_heartbeat = 0.0
        self.broker_seen = 0.0
        self.reconnects = 0
        self.outbox: list[list[bytes]] = []  # replies and pushes of this pass (flush)

    def connect(self, now: float) -> zmq.Socket:
        self._close()
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        # a new identity per connection: the broker hands no identity over (a peer could take
        # a worker's route by its name), and the last connection may not be gone yet
        self.identity = b"%s:%d:%s" % (self.name, os.getpid(), secrets.token_hex(4).encode())
        s.setsockopt(zmq.IDENTITY, self.identity)
        s.setsockopt(zmq.SNDHWM, 200_000)
        s.setsockopt(zmq.RCVHWM, 200_000)
        self.monitor = s.get_monitor_socket(zmq.EVENT_CONNECTED)
        s.connect(self.endpoint)
        self.socket = s
        self.connects_seen = 0
        ready = {"service": self.service, "secret": self.link.secret}
        self._send([P.pack_header(P.MsgType.W_READY), P.pack_body(ready)])
        self.broker_seen = self.last_beat = now
        self.next_heartbeat = now + self.heartbeat_sec
        log.info("%s connected to %s as %r", self.service, self.endpoint, self.identity)
        return s

    def _send(self, frames: list[bytes]) -> None:
        assert self.socket is not None  # connect() runs before any send; not wire input
        try:
            P.send_frames(self.socket, frames)
        except zmq.Again:
            log.warning("broker is not reading; a message to it was dropped")

    def reply(self, client: bytes, msg_type: int, body: Any, request_id: int = 0) -> None:
        """Answer a request, or push to a client or render by its identity (sent by flush)."""
        data = body if isinstance(body, P.Packed) else P.pack_body(body)
        self.outbox.append([client, P.pack_header(msg_type, request_id), data])

    def error(self, client: bytes, request_id: int, code: P.ErrorCode, text: str) -> None:
        self.outbox.append([client, *P.error_frames(request_id, code, text)])

    def flush(self) -> None:
        """Send the outbox to the broker, a batch per BATCH_MAX replies."""
        if not self.outbox or self.socket is None:
            return
        outbox, self.outbox = self.outbox, []
        for batch in P.batches(outbox, _reply_size):
            self._send([_W_REPLIES, P.pack_batch(batch)])

    def receive(self, handler: Handler, now: float) -> int:
        """Drain the broker socket into the handler. Returns how many requests were handled."""
        assert self.socket is not None
        handled = 0
        while handled < DRAIN_REQUESTS:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self.broker_seen = now
            self.reconnect_delay = RECONNECT_MIN
            self.reconnect_at = None
            try:
                wheader = P.unpack_header(frames[0])
            except P.ProtocolError as exc:
                log.warning("broker sent a bad header: %s", exc)
                continue
            if wheader.type == P.MsgType.W_REQUESTS and len(frames) == 2:
                try:
                    requests = P.unpack_batch(frames[1], 4)
                except P.ProtocolError as exc:
                    log.warning("broker sent a malformed batch: %s", exc.text)
                    continue
                # full pace only while someone waits on us (the broker expects it then); a
                # farm's beats and reports alone leave us at the rest pace
                if any(P.awaited(request[1]) for request in requests):
                    if self.last_request < now - self.heartbeat_sec:  # back from rest
                        self.next_heartbeat = min(self.next_heartbeat, now + self.heartbeat_sec)
                    self.last_request = now
                for client, header, body, user in requests:
                    # user: the name the broker proved by the sender's key (af_auth)
                    proven = user.decode("utf-8", "replace") if user is not None else None
                    self._request(handler, client, header, body, proven)
                handled += len(requests)
                self.flush()  # a batch's answers do not wait for the next batches
            elif wheader.type == P.MsgType.W_DISCONNECT:
                log.info("broker does not know us (it restarted?): announcing again")
                self.connect(now)
                return handled
            elif wheader.type != P.MsgType.W_HEARTBEAT:
                log.warning("broker sent %s; ignored", wheader.type_name)
        return handled

    def _request(
        self,
        handler: Handler,
        client: bytes,
        header_frame: bytes,
        body_frame: bytes,
        proven: str | None = None,
    ) -> None:
        try:
            header = P.unpack_header(header_frame)
            body = P.unpack_body(body_frame, self.message_size_max)
        except P.ProtocolError as exc:
            request_id = (
                P.HEADER.unpack(header_frame)[2] if len(header_frame) == P.HEADER_SIZE else 0
            )
            self.error(client, request_id, exc.code, exc.text)
            return
        try:
            if proven is None:  # the trusted mode: handlers written before af_auth still fit
                handler.handle(client, header, body)
            else:
                handler.handle(client, header, body, proven)
        except Exception:  # a bug must not kill the worker; the client gets an answer anyway
            log.exception("error handling %s from %r", header.type_name, client)
            self.error(
                client, header.request_id, P.ErrorCode.INTERNAL, "internal server error (logged)"
            )

    def housekeeping(self, now: float) -> float:
        """Heartbeat the broker; reconnect when it went silent. Returns the next deadline."""
        if now - self.broker_seen > self.silence_limit:
            if self.reconnect_at is None:  # back-off as a deadline: the loop keeps serving
                self.reconnects += 1
                log.warning(
                    "no word from the broker for %.1f s; reconnecting in %.2f s",
                    now - self.broker_seen,
                    self.reconnect_delay,
                )
                self.reconnect_at = now + self.reconnect_delay
                self.reconnect_delay = min(self.reconnect_delay * 2, RECONNECT_MAX)
            if now < self.reconnect_at:
                return self.reconnect_at
            self.reconnect_at = None
            self.connect(now)
            return self.next_heartbeat
        if now >= self.next_heartbeat:
            self._send([P.pack_header(P.MsgType.W_HEARTBEAT)])
            self.last_beat = now
            busy = now - self.last_request < self.heartbeat_sec * self.liveness
            self.next_heartbeat = now + (self.heartbeat_sec if busy else self.rest_sec)
        return self.next_heartbeat

    def on_monitor(self, now: float) -> None:
        """The DEALER connected: the first time, to the broker it announced to; again, to a
        broker that came back (restarted, its socket made anew), which does not know us
        yet: announce at once rather than at the next heartbeat, up to 5 s away at rest."""
        assert self.monitor is not None
        while True:
            try:
                self.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.connects_seen += 1
            if self.connects_seen > 1 and self.socket is not None:
                log.info("%s: the broker's socket is back: announcing again", self.service)
                ready = {"service": self.service, "secret": self.link.secret}
                self._send([P.pack_header(P.MsgType.W_READY), P.pack_body(ready)])
                self.broker_seen = now

    def _close(self) -> None:
        if self.socket is not None:
            with contextlib.suppress(zmq.ZMQError):
                self.socket.disable_monitor()
            self.socket.close(0)
            self.socket = None
        if self.monitor is not None:
            self.monitor.close(0)
            self.monitor = None

    def disconnect(self) -> None:
        if self.socket is not None:
            self.flush()
            self._send([P.pack_header(P.MsgType.W_DISCONNECT)])
        self._close()


_W_REPLIES = P.pack_header(P.MsgType.W_REPLIES)


def _reply_size(frames: list[bytes]) -> int:
    return len(frames[2])


class WorkerLoop:
    """One poll loop: broker requests, extra sockets, and the owner's timed work."""

    def __init__(
        self,
        conn: WorkerConnection,
        handler: Handler,
        tick: Callable[[float], float] | None = None,
    ) -> None:
        self.conn = conn
        self.handler = handler
        self.tick = tick  # called after every pass with now; returns the owner's next deadline
        self.extra: dict[zmq.Socket, Callable[[float], None]] = {}
        self.running = False

    def add_socket(self, socket: zmq.Socket, callback: Callable[[float], None]) -> None:
        self.extra[socket] = callback

    def run(self) -> None:
        self.running = True
        socket = self.conn.connect(time.monotonic())
        deadline = conn_deadline = 0.0
        alive = watchdog.beat_from_env()
        while self.running:
            poller = zmq.Poller()
            poller.register(socket, zmq.POLLIN)
            monitor = self.conn.monitor
            if monitor is not None:
                poller.register(monitor, zmq.POLLIN)
            for extra in self.extra:
                poller.register(extra, zmq.POLLIN)
            while self.running and self.conn.socket is socket:
                timeout_ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
                events = dict(poller.poll(timeout_ms))
                now = time.monotonic()
                if socket in events:
                    self.conn.receive(self.handler, now)
                    conn_deadline = min(conn_deadline, self.conn.next_heartbeat)
                if monitor is not None and monitor in events:
                    self.conn.on_monitor(now)
                for extra, callback in self.extra.items():
                    if extra in events:
                        callback(now)
                now = time.monotonic()
                if now >= conn_deadline:
                    conn_deadline = self.conn.housekeeping(now)
                deadline = min(conn_deadline, alive.due)
                if self.tick is not None:
                    deadline = min(deadline, self.tick(now))
                self.conn.flush()
                alive(now)
            socket = self.conn.socket  # reconnected: poll the new socket
        self.conn.disconnect()

    def stop(self, *_: Any) -> None:
        self.running = False
