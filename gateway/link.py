"""The gateway's one connection to the broker: many requests in flight on one DEALER.

Every TCP client of the gateway is one request; all of them share this socket, each
answer found by its request id, so the broker sees one steady client however many
connections come and go on the gateway's side.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from typing import Any

import zmq
import zmq.asyncio

from broker import protocol as P
from gateway.translate import Refusal

log = logging.getLogger("gateway")


class BrokerLink:
    def __init__(self, endpoint: str, timeout: float, message_size_max: int) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.message_size_max = message_size_max
        self.ctx = zmq.asyncio.Context()
        self.socket = self.ctx.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.IDENTITY, b"G:" + uuid.uuid4().hex.encode())
        self.socket.connect(endpoint)
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._receiver: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._receiver = asyncio.get_running_loop().create_task(self._receive())

    async def request(self, body: dict[str, Any]) -> Any:
        """One request of ours; its reply, or Refusal with our server's reason."""
        request_id = next(self._ids) % P.MAX_REQUEST_ID + 1  # 0 is for pushes
        try:
            frames = P.message(P.MsgType.REQUEST, body, request_id)
        except (TypeError, ValueError, OverflowError) as exc:
            raise Refusal(P.ErrorCode.INVALID, f"cannot encode the request: {exc}") from exc
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:  # the send too: it waits while the broker is away and its queue is full
            return await asyncio.wait_for(self._exchange(frames, future), self.timeout)
        except TimeoutError:
            raise Refusal(
                P.ErrorCode.NO_SERVICE,
                f"no answer from the scheduler within {self.timeout:g} s",
            ) from None
        finally:
            self._pending.pop(request_id, None)

    async def _exchange(self, frames: list[bytes], future: asyncio.Future[Any]) -> Any:
        await self.socket.send_multipart(frames)
        return await future

    async def _receive(self) -> None:
        while True:
            frames = await self.socket.recv_multipart()
            if len(frames) != 2:
                continue
            try:
                header = P.unpack_header(frames[0])
                body = P.unpack_body(frames[1], self.message_size_max)
            except P.ProtocolError as exc:
                log.warning("unreadable reply from the broker: %s", exc)
                continue
            future = self._pending.get(header.request_id)
            if future is None or future.done():
                continue  # an answer to a request that timed out
            if header.type == P.MsgType.ERROR and isinstance(body, dict):
                code, text = body.get("code", 0), str(body.get("error", "error"))
                future.set_exception(Refusal(int(code) if isinstance(code, int) else 0, text))
            else:
                future.set_result(body)

    def close(self) -> None:
        if self._receiver is not None:
            self._receiver.cancel()
        self.socket.close(0)
        self.ctx.term()
