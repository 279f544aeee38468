"""The gateway's one connection to the broker: many requests in flight on one DEALER.

Every TCP client of the gateway is one request; all of them share this socket, each
answer found by its request id, so the broker sees one steady client however many
connections come and go on the gateway's side.

The socket is a plain one, watched by the event loop itself (its FD in the loop's
selector): a reply is read and its request's future resolved in the same turn of the loop
that saw it come, and a request is sent at once, without the futures, tasks and extra
turns of zmq.asyncio, which cost the gateway about as much per request as all the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import msgpack
import zmq

from broker import protocol as P
from gateway.translate import Refusal

log = logging.getLogger("gateway")

# plain ints: pyzmq's are enum flags, and each `&` of one makes a new enum member
_EVENTS, _POLLIN, _POLLOUT, _NOBLOCK = (
    int(x) for x in (zmq.EVENTS, zmq.POLLIN, zmq.POLLOUT, zmq.NOBLOCK)
)


class Error(NamedTuple):
    """Our server's refusal, as a future's result (see BrokerLink.request)."""

    code: int
    text: str


class BrokerLink:
    def __init__(self, endpoint: str, timeout: float, message_size_max: int) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.message_size_max = message_size_max
        self.ctx = zmq.Context()
        self.socket = self.ctx.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.IDENTITY, b"G:" + uuid.uuid4().hex.encode())
        self.socket.connect(endpoint)
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._senders: deque[asyncio.Future[None]] = deque()  # waiting for room to send
        self._loop: asyncio.AbstractEventLoop | None = None
        self.on_push: Callable[[Any], None] = lambda _body: None  # a monitor's pushes

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.socket.FD, self._ready)
        self._ready()

    async def request(self, body: dict[str, Any], kind: int = P.MsgType.REQUEST) -> Any:
        """One request of ours (or a message of another `kind`, e.g. a monitor's
        registration); its reply, or Refusal with our server's reason."""
        request_id = next(self._ids) % P.MAX_REQUEST_ID + 1  # 0 is for pushes
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:  # the send too: it waits while the broker is away and its queue is full
            async with asyncio.timeout(self.timeout):
                reply = await self._exchange(request_id, body, future, kind)
        except TimeoutError:
            reply = Error(
                P.ErrorCode.NO_SERVICE, f"no answer from the scheduler within {self.timeout:g} s"
            )
        finally:
            self._pending.pop(request_id, None)
            del future
        if isinstance(reply, Error):
            # raised here, fresh: an exception that went through a future and a timeout holds
            # their frames in a reference cycle, and with them a large request, until the
            # garbage collector happens to run
            code, text = reply
            del reply
            raise Refusal(code, text)
        return reply

    async def _exchange(
        self, request_id: int, body: Any, future: asyncio.Future[Any], kind: int
    ) -> Any:
        """Pack the body into one buffer and hand that buffer to ZeroMQ as it is: a large
        request exists once packed, never also as a copy."""
        packer = msgpack.Packer(use_bin_type=True, autoreset=False)
        try:
            packer.pack(body)
        except (TypeError, ValueError, OverflowError) as exc:
            return Error(P.ErrorCode.INVALID, f"cannot encode the request: {exc}")
        frames = [P.pack_header(kind, request_id), packer.getbuffer()]
        del packer
        await self._send(frames)
        del frames
        return await future

    async def _send(self, frames: list[Any]) -> None:
        """Send at once; while ZeroMQ has no room (the broker away, its queue full), wait
        for the socket to say it has."""
        while True:
            try:
                self.socket.send_multipart(frames, _NOBLOCK, copy=False)
                break
            except zmq.Again:
                waiter = asyncio.get_running_loop().create_future()
                self._senders.append(waiter)
                try:
                    await waiter
                finally:
                    with contextlib.suppress(ValueError):
                        self._senders.remove(waiter)
        self._ready()  # a send may take the FD's signal of a reply: look now

    def _ready(self, batch: int = 256) -> None:
        """The socket's FD said something changed (or a send may have taken that signal):
        its FD only signals a change, so read until ZeroMQ has nothing more, and wake a
        sender waiting for room. At most `batch` replies in one turn of the loop; the rest
        in the next, so that a stream of pushes cannot hold the loop."""
        for _ in range(batch):
            events = self.socket.getsockopt(_EVENTS)
            if events & _POLLOUT:
                while self._senders:
                    waiter = self._senders.popleft()
                    if not waiter.done():
                        waiter.set_result(None)
            if not events & _POLLIN:
                return
            try:
                frames = self.socket.recv_multipart(_NOBLOCK)
            except zmq.Again:
                return
            self._deliver(frames)
        if self._loop is not None:
            self._loop.call_soon(self._ready)

    def _deliver(self, frames: list[bytes]) -> None:
        """A reply to the request waiting for it (its own frame: nothing of it stays)."""
        if len(frames) != 2:
            return
        try:
            header = P.unpack_header(frames[0])
            body = P.unpack_body(frames[1], self.message_size_max)
        except P.ProtocolError as exc:
            log.warning("unreadable reply from the broker: %s", exc)
            return
        if header.type == P.MsgType.MONITOR_EVENTS:
            self.on_push(body)
            return
        future = self._pending.get(header.request_id)
        if future is None or future.done():
            return  # an answer to a request that timed out
        if header.type == P.MsgType.ERROR and isinstance(body, dict):
            code, text = body.get("code", 0), str(body.get("error", "error"))
            future.set_result(Error(int(code) if isinstance(code, int) else 0, text))
        else:
            future.set_result(body)

    def close(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):  # the loop already closed: nothing to undo
                self._loop.remove_reader(self.socket.FD)
            self._loop = None
        self.socket.close(0)
        self.ctx.term()
