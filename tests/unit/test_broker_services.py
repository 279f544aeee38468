from __future__ import annotations

from broker.services import Registry


def registry() -> Registry:
    return Registry(liveness_sec=3.0, request_timeout=10.0, queue_max=2)


def test_workers_expire_after_liveness_unless_touched() -> None:
    reg = registry()
    reg.ready(b"w1", "scheduler", now=0.0)
    reg.ready(b"w2", "scheduler", now=0.0)
    reg.touch(b"w2", now=2.0)
    dead = reg.expire_workers(now=3.5)
    assert [w.identity for w in dead] == [b"w1"]
    assert list(reg.services["scheduler"].workers) == [b"w2"]


def test_ready_again_replaces_and_round_robin_picks_each() -> None:
    reg = registry()
    reg.ready(b"a", "s", 0)
    reg.ready(b"b", "s", 0)
    reg.ready(b"a", "s", 1)
    picks = {reg.services["s"].pick().identity for _ in range(4)}  # type: ignore[union-attr]
    assert picks == {b"a", b"b"}
    assert len(reg.workers) == 2


def test_queue_is_bounded_and_expires_in_order() -> None:
    reg = registry()
    assert reg.enqueue("s", b"c1", b"h", b"b", now=0.0)
    assert reg.enqueue("s", b"c2", b"h", b"b", now=1.0)
    assert not reg.enqueue("s", b"c3", b"h", b"b", now=1.0)  # full
    expired = reg.expire_requests(now=10.5)
    assert [p.client for _, p in expired] == [b"c1"]
    assert reg.queued() == {"s": 1}


def test_pick_without_workers_is_none() -> None:
    assert registry().service("s").pick() is None


def test_heartbeats_go_once_the_oldest_waited_or_a_batch_is_full() -> None:
    reg = Registry(liveness_sec=3.0, request_timeout=10.0, queue_max=100)
    svc = reg.service("s")
    assert reg.flush_at(svc, gather=0.002, batch_max=3) == float("inf")  # nothing queued
    reg.enqueue("s", b"c1", b"h", b"b", now=5.0, gather=True)
    assert reg.flush_at(svc, gather=0.002, batch_max=3) == float("inf")  # no worker to take it
    reg.ready(b"w", "s", now=5.0)
    assert reg.flush_at(svc, gather=0.002, batch_max=3) == 5.002  # the oldest waited enough
    reg.enqueue("s", b"c2", b"h", b"b", now=5.001, gather=True)
    assert reg.flush_at(svc, gather=0.002, batch_max=3) == 5.002  # the oldest sets the time
    reg.enqueue("s", b"c3", b"h", b"b", now=5.001, gather=True)
    assert reg.flush_at(svc, gather=0.002, batch_max=3) == 0.0  # a full batch: at once


def test_a_request_that_may_not_wait_takes_the_gathered_ones_along_at_once() -> None:
    reg = Registry(liveness_sec=3.0, request_timeout=10.0, queue_max=100)
    reg.ready(b"w", "s", now=5.0)
    svc = reg.service("s")
    reg.enqueue("s", b"render", b"h", b"b", now=5.0, gather=True)
    reg.enqueue("s", b"afcmd", b"h", b"b", now=5.0005)
    assert reg.flush_at(svc, gather=0.002, batch_max=500) == 0.0
    reg.expire_requests(now=16.0)  # both gone: nothing urgent is left
    reg.enqueue("s", b"render", b"h", b"b", now=16.0, gather=True)
    assert reg.flush_at(svc, gather=0.002, batch_max=500) == 16.002
