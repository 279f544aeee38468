"""Bad input at the broker port: every kind gets an error reply or is dropped with a log line,
and the broker, the scheduler and the renders keep working afterwards."""

from __future__ import annotations

import json
import os
import socket
import struct
import time

import msgpack
import pytest
import zmq

from broker import protocol as P
from tests.conftest import Farm, wait_for

pytestmark = pytest.mark.integration

SIZE_LIMIT = 65536


@pytest.fixture
def busy_farm(make_farm) -> Farm:  # type: ignore[no-untyped-def]
    farm = make_farm(af_message_size_max=SIZE_LIMIT)
    farm.start_server()
    farm.start_render("render-a")
    wait_for(lambda: farm.online() == {"render-a"}, 20, "render online")
    return farm


class RawPeer:
    """A DEALER that sends whatever frames it is told to."""

    def __init__(self, port: int) -> None:
        self.ctx = zmq.Context.instance()
        self.socket = self.ctx.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(f"tcp://127.0.0.1:{port}")

    def ask(self, frames: list[bytes], timeout: float = 5.0) -> tuple[P.Header, dict] | None:
        self.socket.send_multipart(frames)
        if not self.socket.poll(int(timeout * 1000)):
            return None
        reply = self.socket.recv_multipart()
        return P.unpack_header(reply[0]), msgpack.unpackb(reply[1])

    def close(self) -> None:
        self.socket.close(0)


def header(msg_type: int, request_id: int = 7, version: int = P.PROTOCOL_VERSION) -> bytes:
    return struct.pack(">HHI", version, msg_type, request_id)


def assert_error(answer: tuple[P.Header, dict] | None, code: P.ErrorCode, *words: str) -> None:
    assert answer is not None, "no reply"
    head, body = answer
    assert head.type == P.MsgType.ERROR
    assert body["code"] == code, body
    for word in words:
        assert word in body["error"], body


def test_garbage_gets_errors_and_the_farm_keeps_serving(busy_farm: Farm) -> None:
    farm = busy_farm
    broker_pid = farm.child("broker.broker").pid
    scheduler_pid = farm.child("workers.scheduler.main").pid

    # 1. Random bytes over raw TCP: the connection is dropped, nothing else happens.
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", farm.port), timeout=5) as raw:
            raw.sendall(os.urandom(4096))
            try:
                while raw.recv(4096):
                    pass
            except (ConnectionResetError, TimeoutError):
                pass

    peer = RawPeer(farm.port)
    try:
        # 2. A valid header with a body that is not msgpack.
        assert_error(
            peer.ask([header(P.MsgType.REQUEST), b"\xc1\xc1 not msgpack"]),
            P.ErrorCode.BAD_MESSAGE,
            "msgpack",
        )
        # 3. Wrong protocol version.
        assert_error(
            peer.ask([header(P.MsgType.REQUEST, version=99), b"\x80"]),
            P.ErrorCode.BAD_VERSION,
            "99",
        )
        # 4. Unknown message type.
        assert_error(peer.ask([header(77), P.pack_body({})]), P.ErrorCode.UNKNOWN_TYPE, "77")
        # 5. A body over the size limit.
        big = P.pack_body({"get": {"type": "renders", "mask": "x" * (SIZE_LIMIT + 10)}})
        assert_error(
            peer.ask([header(P.MsgType.REQUEST), big]), P.ErrorCode.TOO_LARGE, str(SIZE_LIMIT)
        )
        # 6. Wrong frame counts and a short header.
        assert_error(peer.ask([header(P.MsgType.REQUEST)]), P.ErrorCode.BAD_MESSAGE, "frames")
        assert_error(
            peer.ask([header(P.MsgType.REQUEST), b"\x80", b"x"]), P.ErrorCode.BAD_MESSAGE, "frames"
        )
        assert_error(peer.ask([b"abc", b"\x80"]), P.ErrorCode.BAD_MESSAGE, "header")
        # 7. Well-formed msgpack, wrong content: the scheduler names what is wrong.
        assert_error(
            peer.ask([header(P.MsgType.REQUEST), P.pack_body([1, 2])]),
            P.ErrorCode.INVALID,
            "object",
        )
        assert_error(
            peer.ask(
                [header(P.MsgType.REQUEST), P.pack_body({"get": {"type": "renders", "bogus": 1}})]
            ),
            P.ErrorCode.INVALID,
            "get.bogus",
            "unknown field",
        )
        assert_error(
            peer.ask([header(P.MsgType.RENDER_REGISTER), P.pack_body({"name": 5})]),
            P.ErrorCode.INVALID,
            "name",
            "expected str",
        )
        assert_error(
            peer.ask(
                [
                    header(P.MsgType.RENDER_REGISTER),
                    P.pack_body({"name": "x", "netifs": [{"mac": 1}]}),
                ]
            ),
            P.ErrorCode.INVALID,
            "netifs[0]",
        )
        assert_error(
            peer.ask([header(P.MsgType.RENDER_UPDATE), P.pack_body({"id": "1"})]),
            P.ErrorCode.INVALID,
            "id",
        )
        assert_error(
            peer.ask([header(P.MsgType.REQUEST), P.pack_body({1: 2})]),
            P.ErrorCode.BAD_MESSAGE,
        )
        # 8. A message far over the limit: libzmq drops that connection; nobody else notices.
        assert (
            peer.ask([header(P.MsgType.REQUEST), b"\x00" * (SIZE_LIMIT * 4)], timeout=1.0) is None
        )
        # 9. Worker messages from a peer that is no worker are not taken as a worker's.
        peer2 = RawPeer(farm.port)
        peer2.socket.send_multipart(
            [header(P.MsgType.W_REPLIES), P.pack_batch([[b"someone", header(2), b"\x80"]])]
        )
        peer2.close()
    finally:
        peer.close()

    # The render stays online past a zombie time, and everything answers as before.
    deadline = time.monotonic() + 4
    wait_for(
        lambda: time.monotonic() > deadline and farm.online() == {"render-a"},
        10,
        "render still online",
    )
    assert farm.child("broker.broker").pid == broker_pid
    assert farm.child("workers.scheduler.main").pid == scheduler_pid
    stat = json.loads(farm.afcmd("stat", "--json").stdout)
    assert stat["broker"]["errors"]["BAD_VERSION"] >= 1
    assert stat["broker"]["errors"]["TOO_LARGE"] >= 1
    assert stat["broker"]["errors"]["UNKNOWN_TYPE"] >= 1
    assert stat["scheduler"]["messages"]["invalid"] >= 4
