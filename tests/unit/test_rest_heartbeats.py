"""Heartbeats between the broker and a worker slow down at rest, and come back to full pace
(and to the short liveness) as soon as the worker is given requests."""

from __future__ import annotations

import time
from pathlib import Path

import zmq

from broker import protocol as P
from broker.services import Registry
from broker.workerlink import WorkerLink
from workers.base import WorkerConnection

BEAT = 1.0


class Handler:
    def __init__(self) -> None:
        self.seen: list[int] = []

    def handle(
        self, client: bytes, header: P.Header, body: object, proven: str | None = None
    ) -> None:
        self.seen.append(header.type)


def broker_and_worker(tmp_path: Path) -> tuple[zmq.Socket, WorkerConnection]:
    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    endpoint = f"ipc://{tmp_path}/w.sock"
    router.bind(endpoint)
    conn = WorkerConnection(ctx, WorkerLink(endpoint, "s3cret"), P.SCHEDULER, heartbeat_sec=BEAT)
    return router, conn


def recv(router: zmq.Socket, timeout: float = 5.0) -> list[bytes]:
    assert router.poll(int(timeout * 1000)), "nothing from the worker"
    return router.recv_multipart()


def test_a_worker_at_rest_beats_every_five_periods_and_at_full_pace_once_given_work(
    tmp_path: Path,
) -> None:
    router, conn = broker_and_worker(tmp_path)
    try:
        conn.connect(100.0)
        identity, ready, _body = recv(router)
        assert P.unpack_header(ready).type == P.MsgType.W_READY
        assert conn.housekeeping(101.0) == 101.0 + 5 * BEAT  # at rest: the next in 5 s
        assert P.unpack_header(recv(router)[1]).type == P.MsgType.W_HEARTBEAT
        assert conn.silence_limit == 5 * BEAT * 3  # the broker beats slower at rest too

        request = [b"client", P.pack_header(P.MsgType.REQUEST, 9), P.pack_body({})]
        batch = P.pack_batch([[*request, None]])
        router.send_multipart([identity, P.pack_header(P.MsgType.W_REQUESTS), batch])
        handler = Handler()
        deadline = time.monotonic() + 5
        while not handler.seen and time.monotonic() < deadline:
            conn.socket.poll(100)  # type: ignore[union-attr]
            conn.receive(handler, 102.0)
        assert handler.seen == [P.MsgType.REQUEST]
        assert conn.next_heartbeat == 102.0 + BEAT  # back from rest: the broker may wait on us
        assert conn.housekeeping(103.0) == 103.0 + BEAT  # busy: full pace
        assert conn.housekeeping(106.5) == 106.5 + 5 * BEAT  # quiet for liveness: rest again
    finally:
        conn.disconnect()
        router.close(0)


def test_a_farms_beats_and_reports_alone_leave_the_worker_at_rest(tmp_path: Path) -> None:
    """Nobody waits on a batch of render beats and reports (P.awaited): the worker does not
    beat the broker every second for them, so ten idle renders do not keep it at full pace."""
    router, conn = broker_and_worker(tmp_path)
    try:
        conn.connect(100.0)
        identity, ready, _body = recv(router)
        assert conn.housekeeping(101.0) == 101.0 + 5 * BEAT
        recv(router)  # its heartbeat
        beats = [
            [b"render", P.pack_header(P.MsgType.RENDER_BEAT, 7), P.pack_body({"id": 1}), None],
            [b"render", P.pack_header(P.MsgType.RENDER_UPDATE, 8), P.pack_body({"id": 1}), None],
            [b"render", P.pack_header(P.MsgType.REQUEST, 0), P.pack_body({}), None],  # a push
        ]
        router.send_multipart([identity, P.pack_header(P.MsgType.W_REQUESTS), P.pack_batch(beats)])
        handler = Handler()
        deadline = time.monotonic() + 5
        while len(handler.seen) < 3 and time.monotonic() < deadline:
            conn.socket.poll(100)  # type: ignore[union-attr]
            conn.receive(handler, 102.0)
        assert len(handler.seen) == 3, handler.seen
        assert conn.next_heartbeat == 101.0 + 5 * BEAT  # still the rest pace
        assert conn.housekeeping(106.0) == 106.0 + 5 * BEAT
    finally:
        conn.disconnect()
        router.close(0)


def test_only_requests_someone_waits_on_are_awaited() -> None:
    assert P.awaited(P.pack_header(P.MsgType.REQUEST, 9))
    assert P.awaited(P.pack_header(P.MsgType.RENDER_REGISTER, 9))
    assert not P.awaited(P.pack_header(P.MsgType.REQUEST, 0))  # fire and forget
    assert not P.awaited(P.pack_header(P.MsgType.RENDER_BEAT, 9))
    assert not P.awaited(P.pack_header(P.MsgType.RENDER_UPDATE, 9))


def test_a_worker_announces_again_when_the_brokers_socket_comes_back(tmp_path: Path) -> None:
    router, conn = broker_and_worker(tmp_path)
    endpoint = conn.endpoint
    try:
        conn.connect(100.0)
        assert P.unpack_header(recv(router)[1]).type == P.MsgType.W_READY
        router.close(0)  # the broker went (killed): a new one binds the same socket
        router = zmq.Context.instance().socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.bind(endpoint)
        deadline = time.monotonic() + 10
        frames: list[bytes] = []
        while not frames and time.monotonic() < deadline:
            if conn.monitor is not None and conn.monitor.poll(100):
                conn.on_monitor(time.monotonic())
            if router.poll(0):
                frames = router.recv_multipart()
        assert frames, "the worker did not announce itself to the new broker"
        assert P.unpack_header(frames[1]).type == P.MsgType.W_READY
    finally:
        conn.disconnect()
        router.close(0)


def test_a_worker_given_requests_must_answer_within_the_short_liveness() -> None:
    reg = Registry(liveness_sec=3.0, request_timeout=10.0, queue_max=10, rest_liveness_sec=15.0)
    worker = reg.ready(b"w", "scheduler", now=0.0)
    assert worker.expiry == 15.0  # at rest: five times the heartbeat may pass in silence
    reg.expect(worker, now=10.0)
    assert worker.expiry == 13.0  # given work: heard from within liveness, or gone
    assert [w.identity for w in reg.expire_workers(now=13.5)] == [b"w"]
    again = reg.ready(b"w2", "scheduler", now=20.0)
    reg.touch(b"w2", now=21.0)
    assert again.expiry == 36.0
    reg.expect(again, now=30.0)
    reg.touch(b"w2", now=31.0)  # it answered: at rest again
    assert again.expiry == 46.0
