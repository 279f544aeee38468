"""The simulator's own ZMTP DEALER (bench/_zmtp.py) against a real libzmq ROUTER on loopback."""

from __future__ import annotations

import selectors
import time
from collections.abc import Iterator

import pytest
import zmq

from bench._simrenders import Engine
from bench._zmtp import Dealer, ZmtpError, frame, parse_endpoint
from broker import protocol as P


@pytest.fixture
def router() -> Iterator[zmq.Socket]:
    ctx = zmq.Context()
    s = ctx.socket(zmq.ROUTER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.ROUTER_MANDATORY, 1)
    s.bind("tcp://127.0.0.1:0")
    yield s
    s.close(0)
    ctx.term()


def address(router: zmq.Socket) -> tuple[str, int]:
    return parse_endpoint(router.getsockopt(zmq.LAST_ENDPOINT).decode())


def pump(dealer: Dealer, until: float = 5.0) -> list[list[bytes]]:
    """Write and read until the dealer completes a message; fail at the deadline."""
    with selectors.DefaultSelector() as sel:
        sel.register(dealer, selectors.EVENT_READ | selectors.EVENT_WRITE)
        deadline = time.monotonic() + until
        while time.monotonic() < deadline:
            for _, events in sel.select(0.05):
                if events & selectors.EVENT_WRITE:
                    dealer.flush()
                if events & selectors.EVENT_READ and (messages := dealer.read()):
                    return messages
            sel.modify(
                dealer, selectors.EVENT_READ | (selectors.EVENT_WRITE if dealer.wants_write else 0)
            )
    pytest.fail("no message within the deadline")


def routed(router: zmq.Socket, dealer: Dealer) -> list[bytes]:
    """What the ROUTER receives, pumping the dealer meanwhile (it sends once it has read the
    router's READY)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        dealer.flush()
        assert dealer.read() == []
        if router.poll(50):
            return router.recv_multipart()
    pytest.fail("the router received nothing")


def test_messages_both_ways_under_the_dealers_identity(router: zmq.Socket) -> None:
    dealer = Dealer(address(router), b"R:sim00001:abc")
    try:
        long = bytes(range(256)) * 300  # past 255 bytes: the 8-byte size form
        assert dealer.send([b"header", long])  # before the handshake: held, then sent
        assert routed(router, dealer) == [b"R:sim00001:abc", b"header", long]
        router.send_multipart([b"R:sim00001:abc", b"h", long])
        router.send_multipart([b"R:sim00001:abc", b"", b"x"])
        got = pump(dealer)
        while len(got) < 2:
            got += pump(dealer)
        assert got == [[b"h", long], [b"", b"x"]]
    finally:
        dealer.close()


def test_a_closed_server_is_an_error_not_a_hang(router: zmq.Socket) -> None:
    dealer = Dealer(address(router), b"R:sim00002:abc")
    try:
        dealer.send([b"h", b"b"])
        routed(router, dealer)
        router.close(0)
        with pytest.raises(ZmtpError, match="closed"):
            pump(dealer)
    finally:
        dealer.close()


def test_frames_and_endpoints() -> None:
    assert frame(b"ab") == b"\x00\x02ab"
    assert frame(b"ab", 1) == b"\x01\x02ab"
    assert frame(b"x" * 256)[:9] == b"\x02" + (256).to_bytes(8, "big")
    assert parse_endpoint("tcp://127.0.0.1:51000") == ("127.0.0.1", 51000)
    assert parse_endpoint("tcp://[::1]:7") == ("::1", 7)
    with pytest.raises(ValueError):
        parse_endpoint("ipc:///tmp/x")


def test_the_engine_writes_out_a_message_held_for_the_handshake(router: zmq.Socket) -> None:
    """Held until the server's READY, then more than the kernel takes at once: the rest must
    still go, with no later send to push it."""
    endpoint = router.getsockopt(zmq.LAST_ENDPOINT).decode()
    engine = Engine(endpoint, ["sim00003"])
    render = engine.renders[0]
    big = b"x" * (8 << 20)
    try:
        engine.connect(render)
        assert engine._send(render, P.MsgType.RENDER_UPDATE, big)
        deadline = time.monotonic() + 10
        while not router.poll(0):
            assert time.monotonic() < deadline, "the held message never arrived whole"
            engine.poll(0.05)
        assert router.recv_multipart()[2] == big
    finally:
        engine.close(deregister=False)


def test_the_dealer_answers_the_brokers_heartbeats(router: zmq.Socket) -> None:
    """The broker sets ZMTP heartbeats; a simulated render that did not answer them would be
    dropped after the timeout, as a peer that stalls is."""
    router.setsockopt(zmq.HEARTBEAT_IVL, 50)
    router.setsockopt(zmq.HEARTBEAT_TIMEOUT, 200)
    router.bind("tcp://127.0.0.1:0")  # the options count for connections of a new endpoint
    dealer = Dealer(address(router), b"R:sim00003:abc")
    try:
        dealer.send([b"h", b"1"])
        assert routed(router, dealer) == [b"R:sim00003:abc", b"h", b"1"]
        deadline = time.monotonic() + 1.0  # five timeouts: PINGs came and were answered
        while time.monotonic() < deadline:
            dealer.flush()
            assert dealer.read() == []
            time.sleep(0.01)
        router.send_multipart([b"R:sim00003:abc", b"h", b"still there"])
        assert pump(dealer) == [[b"h", b"still there"]]
    finally:
        dealer.close()
