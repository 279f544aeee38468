"""A beat with nothing new is answered by the broker, and still read by the scheduler.

The broker answers a RENDER_BEAT as it comes (an empty RENDER_EVENTS with the beat's request
id), so a render's answer never waits on the scheduler; the scheduler reads the beats in
batches (broker.BEAT_GATHER_SEC) and speaks only when it has something to say.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
import zmq

from bench._simrenders import resources
from broker import protocol as P
from broker.protocol import endpoint
from tests.conftest import Farm, load_slack, wait_for

pytestmark = pytest.mark.integration


class RawRender:
    """A render's socket and nothing else: what it sends and every message it gets."""

    def __init__(self, address: str) -> None:
        self.ctx = zmq.Context()
        self.socket = self.ctx.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(address)
        self.ids = 0

    def send(self, msg_type: int, body: dict[str, Any]) -> int:
        self.ids += 1
        self.socket.send_multipart(P.message(msg_type, body, self.ids))
        return self.ids

    def receive(self, timeout: float) -> tuple[P.Header, Any]:
        if not self.socket.poll(int(timeout * 1000)):
            pytest.fail(f"no message from the server within {timeout:g} s")
        header, body = self.socket.recv_multipart()
        return P.unpack_header(header), P.unpack_body(body, 1 << 20)

    def close(self) -> None:
        self.socket.close()
        self.ctx.term()


def register(render: RawRender, name: str) -> int:
    render.send(
        P.MsgType.RENDER_REGISTER,
        {
            "name": name,
            "user_name": "render",
            "os": "linux",
            "address": "127.0.0.1",
            "host": {"os": "linux", "cpu_num": 4, "cpu_mhz": 3000, "mem_total_mb": 8192},
            "host_resources": resources(1, False),
            "netifs": [],
            "time_launch": time.time(),
            "tasks": [],
        },
    )
    header, body = render.receive(10 * load_slack())
    assert header.type == P.MsgType.RENDER_EVENTS and body["id"] > 0, body
    return int(body["id"])


def test_beats_are_answered_while_the_scheduler_is_frozen_and_read_after(farm: Farm) -> None:
    farm.start_server()
    render = RawRender(endpoint("127.0.0.1", farm.port))
    scheduler = farm.child("workers.scheduler.main")
    try:
        render_id = register(render, "beater")
        scheduler.send_signal(signal.SIGSTOP)
        try:
            # what the frozen scheduler cannot answer, the broker does, at once
            for free in (1001, 1002, 1003):
                snapshot = {**resources(1, False), "mem_free_mb": free}
                sent = render.send(
                    P.MsgType.RENDER_BEAT,
                    {"id": render_id, "host_resources": snapshot, "tasks_held": []},
                )
                header, body = render.receive(2.0 * load_slack())
                assert (header.type, header.request_id, body) == (
                    P.MsgType.RENDER_EVENTS,
                    sent,
                    {},
                )
        finally:
            scheduler.send_signal(signal.SIGCONT)

        def latest_memory() -> Any:
            found = [r for r in farm.renders() if r["name"] == "beater"]
            return found and found[0]["host_resources"].get("mem_free_mb") == 1003

        # ...and the scheduler read them when it went on (the newest replaced the others)
        wait_for(latest_memory, 10, "the last beat's resources in the scheduler")
        # it said nothing of its own to a beat that needed no word
        assert not render.socket.poll(int(1000 * load_slack()))
    finally:
        render.close()


def test_a_beat_of_a_render_the_scheduler_does_not_know_is_told_to_register(farm: Farm) -> None:
    farm.start_server()
    render = RawRender(endpoint("127.0.0.1", farm.port))
    try:
        sent = render.send(P.MsgType.RENDER_BEAT, {"id": 4242, "tasks_held": []})
        header, body = render.receive(2.0 * load_slack())
        assert (header.type, header.request_id, body) == (P.MsgType.RENDER_EVENTS, sent, {})
        # the scheduler's word comes as a push (request id 0), as afrender expects any time
        header, body = render.receive(5.0 * load_slack())
        assert (header.type, header.request_id, body["id"]) == (P.MsgType.RENDER_EVENTS, 0, -1)
        assert "register" in body["reason"]
    finally:
        render.close()


def test_a_beat_that_is_malformed_is_refused_by_the_scheduler(farm: Farm) -> None:
    """The broker never reads a beat's body: the scheduler still refuses a wrong one."""
    farm.start_server()
    render = RawRender(endpoint("127.0.0.1", farm.port))
    try:
        render.send(P.MsgType.RENDER_BEAT, {"id": "seven"})
        header, body = render.receive(2.0 * load_slack())
        assert header.type == P.MsgType.RENDER_EVENTS and body == {}
        header, body = render.receive(5.0 * load_slack())
        assert header.type == P.MsgType.ERROR and header.request_id == 0
        assert body["code"] == P.ErrorCode.INVALID and "id" in body["error"]
    finally:
        render.close()
