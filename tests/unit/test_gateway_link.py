"""gateway.link on a plain socket watched by the loop: replies, refusals, pushes, a broker
that never answers, and requests sent before the broker is there."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import zmq

from broker import protocol as P
from gateway.link import BrokerLink
from gateway.translate import Refusal


class FakeBroker:
    """A ROUTER on loopback answering each request on a thread: its body back, an ERROR
    for {"refuse": …}, a push before the reply for {"push": …}, nothing for {"mute": …}."""

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.socket = self.ctx.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            if not self.socket.poll(20):
                continue
            who, head, body = self.socket.recv_multipart()
            header = P.unpack_header(head)
            request = P.unpack_body(body, 1 << 20)
            if "mute" in request:
                continue
            if "push" in request:
                push = P.pack_header(P.MsgType.MONITOR_EVENTS, 0)
                self.socket.send_multipart([who, push, P.pack_body(request["push"])])
            if "refuse" in request:
                error = {"code": int(P.ErrorCode.INVALID), "error": request["refuse"]}
                answer = [P.pack_header(P.MsgType.ERROR, header.request_id), P.pack_body(error)]
            else:
                answer = [P.pack_header(P.MsgType.REPLY, header.request_id), body]
            self.socket.send_multipart([who, *answer])

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.socket.close(0)
        self.ctx.term()


@pytest.fixture
def broker() -> Any:
    fake = FakeBroker()
    yield fake
    fake.close()


def test_replies_refusals_pushes_and_silence(broker: FakeBroker) -> None:
    async def scenario() -> None:
        link = BrokerLink(P.endpoint("127.0.0.1", broker.port), 0.5, 1 << 20)
        pushes: list[Any] = []
        link.on_push = pushes.append
        link.start()
        broker.thread.start()  # after the link: its first requests waited in ZeroMQ
        try:
            many = await asyncio.gather(*(link.request({"n": i}) for i in range(50)))
            assert many == [{"n": i} for i in range(50)]
            with pytest.raises(Refusal) as refused:
                await link.request({"refuse": "no such job"})
            assert (refused.value.code, refused.value.text) == (P.ErrorCode.INVALID, "no such job")
            assert await link.request({"push": {"e": 1}}) == {"push": {"e": 1}}
            assert pushes == [{"e": 1}]
            with pytest.raises(Refusal) as silent:
                await link.request({"mute": True})
            assert silent.value.code == P.ErrorCode.NO_SERVICE
            assert not link._pending
        finally:
            link.close()

    asyncio.run(scenario())
