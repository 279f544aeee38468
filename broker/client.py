"""DEALER request/reply for clients (afcmd, web, tests): one persistent connection, timeouts.

Each request carries a request id; a reply to an older, timed-out request is skipped, so a
late answer can never be taken for the current one.
"""

from __future__ import annotations

import getpass
import itertools
import os
import socket
import time
import uuid
from typing import Any

import zmq

from auth.curve import HANDSHAKE_FAILED, ClientKeys, handshake_trouble, secure_client
from broker import protocol as P


class ClientError(Exception):
    """Base of what a request can end with besides an answer."""


class NoAnswer(ClientError):
    """`what` happened at one server; `advice` what to check (said once for many servers)."""

    def __init__(self, what: str, advice: str = "") -> None:
        super().__init__(f"{what}: {advice}" if advice else what)
        self.what = what
        self.advice = advice


class ServerError(ClientError):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def caller_identity() -> dict[str, str]:
    """Who is asking: every request carries the caller's user name and host name."""
    try:
        user = os.environ.get("AF_USERNAME") or getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"user_name": user, "host_name": socket.gethostname().lower()}


_RETRIED = (P.ErrorCode.LOST, P.ErrorCode.NO_SERVICE, P.ErrorCode.OVERLOADED)


def _worth_retrying(exc: ClientError) -> bool:
    """Silence, or a server that lost or could not yet take the request; not a refusal."""
    return not isinstance(exc, ServerError) or exc.code in _RETRIED


# A connection refused (and retried) or a handshake failed before this client ever got
# through: nothing listens there, or its key is refused, so it fails at once rather than
# at its timeout. Once it got through, a server that restarts is waited for as usual.
_CONNECTION_EVENTS = zmq.EVENT_CONNECTED | zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_HANDSHAKE_SUCCEEDED


def _moves_on(exc: ClientError) -> bool:
    """Silence, a refused connection or a standby's refusal: the next server may be active."""
    return not isinstance(exc, ServerError) or exc.code == P.ErrorCode.STANDBY


class Client:
    """`endpoint`: one, or a list (af_servername's active/standby servers) tried in turn:
    a request that meets silence or a standby goes to the next, and the client stays there."""

    def __init__(
        self,
        endpoint: str | list[str],
        timeout: float = 4.0,
        *,
        ctx: zmq.Context | None = None,
        message_size_max: int = 64 * 1024 * 1024,
        curve: ClientKeys | None = None,
    ) -> None:
        self.endpoints = [endpoint] if isinstance(endpoint, str) else list(endpoint)
        self.endpoint = self.endpoints[0]
        self.curve = curve
        self.timeout = timeout
        self.message_size_max = message_size_max
        self.ctx = ctx or zmq.Context.instance()
        self._open()
        self._ids = itertools.count(1)
        self.identity = caller_identity()

    def _open(self) -> None:
        self.socket = self.ctx.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.IDENTITY, b"C:" + uuid.uuid4().hex.encode())
        secure_client(self.socket, self.curve)
        # handshake failures explain a silence: a key the server refused, keys on one side only
        self.monitor = self.socket.get_monitor_socket(HANDSHAKE_FAILED | _CONNECTION_EVENTS)
        self._failed = 0  # handshake failures and connection events seen (monitor event bits)
        self.socket.connect(self.endpoint)

    def _move_on(self) -> None:
        self.socket.disable_monitor()
        self.monitor.close(0)
        self.socket.close(0)
        self.endpoint = self.endpoints[
            (self.endpoints.index(self.endpoint) + 1) % len(self.endpoints)
        ]
        self._open()

    def request(self, body: dict[str, Any], timeout: float | None = None) -> Any:
        """A client request ({"get": ...}, {"action": ...}, ...) with the caller's identity."""
        return self.call(P.MsgType.REQUEST, {**self.identity, **body}, timeout)

    def submit(self, job: dict[str, Any], attempts: int = 3, key: str = "", **extra: Any) -> Any:
        """Submit a job; when the server may not have got or kept it (no answer, its
        scheduler went or is away), send it again under the same idempotency key: the server
        answers a repeat with the first submission's reply, never a second job."""
        body = {"job": job, "idempotency_key": key or uuid.uuid4().hex, **extra}
        for attempt in range(1, attempts + 1):
            try:
                return self.request(body)
            except (NoAnswer, ServerError) as exc:
                if attempt == attempts or not _worth_retrying(exc):
                    raise
        raise AssertionError("unreachable")

    def call(self, msg_type: int, body: Any, timeout: float | None = None) -> Any:
        tried: list[str] = []
        for left in range(len(self.endpoints) - 1, -1, -1):
            try:
                return self._call(msg_type, body, timeout)
            except ClientError as exc:
                if not _moves_on(exc):
                    raise
                tried.append(exc.what if isinstance(exc, NoAnswer) else str(exc))
                if not left:
                    if isinstance(exc, NoAnswer) and len(tried) > 1:
                        # each server's own reason: a wrangler sees every one was tried
                        raise NoAnswer(
                            f"none of the {len(tried)} servers answered ({'; '.join(tried)})",
                            exc.advice,
                        ) from exc
                    raise
                self._move_on()
        raise AssertionError("unreachable")

    def _call(self, msg_type: int, body: Any, timeout: float | None = None) -> Any:
        request_id = next(self._ids) & P.MAX_REQUEST_ID
        self.send_frames(P.message(msg_type, body, request_id))
        return self.wait_reply(request_id, timeout)

    def send_frames(self, frames: list[bytes]) -> None:
        try:
            self.socket.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again as exc:
            raise NoAnswer(
                f"cannot send to afserver at {self.endpoint}: {self._why_silent()}"
            ) from exc

    def wait_reply(self, request_id: int, timeout: float | None = None) -> Any:
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self.monitor, zmq.POLLIN)
        while True:
            left = deadline - time.monotonic()
            events = dict(poller.poll(int(left * 1000) + 1)) if left > 0 else {}
            if self.monitor in events:
                why = self._why_silent()  # takes the events in
                seen = self._failed
                if not seen & zmq.EVENT_HANDSHAKE_SUCCEEDED:  # never got through
                    if seen & HANDSHAKE_FAILED:  # keys: no retry will get through
                        raise NoAnswer(f"no answer from afserver at {self.endpoint} ({why})")
                    if seen & zmq.EVENT_CONNECT_RETRIED and not seen & zmq.EVENT_CONNECTED:
                        raise NoAnswer(
                            f"afserver at {self.endpoint} refused the connection",
                            "is afserver running there? check --server or "
                            "af_servername/af_serverport",
                        )
            if self.socket not in events:
                if time.monotonic() < deadline:
                    continue
                raise NoAnswer(
                    f"no answer from afserver at {self.endpoint} within {timeout:g} s "
                    f"({self._why_silent()})"
                )
            frames = self.socket.recv_multipart()
            if len(frames) != 2:
                continue
            header = P.unpack_header(frames[0])
            if header.request_id != request_id:
                continue  # the answer to an earlier request that we gave up on
            body = P.unpack_body(frames[1], self.message_size_max)
            if header.type == P.MsgType.ERROR:
                raise ServerError(body.get("code", 0), body.get("error", "error"))
            return body

    def _why_silent(self) -> str:
        while True:
            try:
                self._failed |= P.monitor_event(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                break
        trouble = handshake_trouble(self._failed, self.curve is not None)
        if trouble:
            return trouble
        if self.socket.poll(0, zmq.POLLOUT):
            return "is afserver running? check --server or af_servername/af_serverport"
        return "not connected, or too many requests pending"

    def close(self) -> None:
        self.socket.disable_monitor()
        self.monitor.close(0)
        self.socket.close(0)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
