from __future__ import annotations

from broker.services import RESERVED_FACTOR, Kind, Queued, Registry


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
    assert reg.enqueue("s", b"c1", b"h", b"b", now=0.0) is Queued.QUEUED
    assert reg.enqueue("s", b"c2", b"h", b"b", now=1.0) is Queued.QUEUED
    assert reg.enqueue("s", b"c3", b"h", b"b", now=1.0) is Queued.FULL
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


def test_beats_alone_ride_along_with_a_pass_and_wake_the_loop_only_when_late() -> None:
    reg = Registry(liveness_sec=3.0, request_timeout=10.0, queue_max=100)
    reg.ready(b"w", "s", now=5.0)
    svc = reg.service("s")
    reg.enqueue("s", b"r1", b"h", b"beat", now=5.0, gather=True, kind=Kind.BEAT)
    due = reg.flush_at(svc, gather=0.002, batch_max=500, beats_gather=0.25)
    assert due == 5.25  # a pass from then on takes it along...
    assert reg.wake_at(svc, due, beats_late=1.5) == 6.5  # ...but none is made for it sooner
    reg.enqueue("s", b"r2", b"h", b"report", now=5.1, gather=True, kind=Kind.RESERVED)
    due = reg.flush_at(svc, gather=0.002, batch_max=500, beats_gather=0.25)
    assert reg.wake_at(svc, due, beats_late=1.5) == due == 5.002  # a report: its own time
    assert reg.wake_at(reg.service("empty"), float("inf"), beats_late=1.5) == float("inf")


def test_a_newer_beat_replaces_the_same_renders_waiting_one() -> None:
    reg = registry()
    svc = reg.service("s")
    assert reg.enqueue("s", b"r1", b"h1", b"beat 1", 0.0, gather=True, kind=Kind.BEAT) is (
        Queued.QUEUED
    )
    assert reg.enqueue("s", b"r1", b"h2", b"beat 2", 0.5, gather=True, kind=Kind.BEAT) is (
        Queued.COALESCED
    )
    assert [(p.header, p.body) for p in svc.queue] == [(b"h2", b"beat 2")]
    assert svc.queue[0].deadline == 10.0  # it keeps its place, so deadlines stay in order


def test_a_beat_behind_a_task_report_is_not_moved_ahead_of_it() -> None:
    reg = registry()
    svc = reg.service("s")
    reg.enqueue("s", b"r1", b"h", b"beat 1", 0.0, gather=True, kind=Kind.BEAT)
    reg.enqueue("s", b"r1", b"h", b"report", 0.1, gather=True, kind=Kind.RESERVED)
    assert reg.enqueue("s", b"r1", b"h", b"beat 2", 0.2, gather=True, kind=Kind.BEAT) is (
        Queued.FULL  # queue_max 2: a third beat waits behind the report, so it is shed
    )
    assert [p.body for p in svc.queue] == [b"beat 1", b"report"]


def test_a_beat_that_went_to_the_worker_is_not_replaced() -> None:
    reg = Registry(liveness_sec=3.0, request_timeout=10.0, queue_max=10)
    svc = reg.service("s")
    reg.enqueue("s", b"r1", b"h", b"beat 1", 0.0, gather=True, kind=Kind.BEAT)
    assert svc.popleft().body == b"beat 1"
    assert reg.enqueue("s", b"r1", b"h", b"beat 2", 1.0, gather=True, kind=Kind.BEAT) is (
        Queued.QUEUED
    )
    assert [p.body for p in svc.queue] == [b"beat 2"]


def test_registrations_and_reports_have_room_beyond_the_limit_beats_and_asks_do_not() -> None:
    reg = registry()  # queue_max 2
    for n in range(2):
        assert reg.enqueue("s", b"c%d" % n, b"h", b"ask", 0.0) is Queued.QUEUED
    assert reg.enqueue("s", b"c9", b"h", b"ask", 0.0) is Queued.FULL
    assert reg.enqueue("s", b"r9", b"h", b"beat", 0.0, kind=Kind.BEAT) is Queued.FULL
    room = 2 * RESERVED_FACTOR - 2
    for n in range(room):
        kind = Kind.REGISTRATION if n % 2 else Kind.RESERVED
        assert reg.enqueue("s", b"r%d" % n, b"h", b"b", 0.0, kind=kind) is Queued.QUEUED
    assert reg.enqueue("s", b"rx", b"h", b"report", 0.0, kind=Kind.RESERVED) is Queued.FULL
    # a render registering again while its first registration waits replaces it: no growth
    assert reg.enqueue("s", b"r1", b"h", b"again", 0.0, kind=Kind.REGISTRATION) is (
        Queued.COALESCED
    )
    assert reg.queued() == {"s": 2 * RESERVED_FACTOR}


def test_expired_requests_leave_no_stale_latest_entry() -> None:
    reg = registry()
    svc = reg.service("s")
    reg.enqueue("s", b"r1", b"h", b"beat 1", 0.0, kind=Kind.BEAT)
    assert [p.body for _, p in reg.expire_requests(now=10.5)] == [b"beat 1"]
    assert svc.latest == {}
    assert reg.enqueue("s", b"r1", b"h", b"beat 2", 11.0, kind=Kind.BEAT) is Queued.QUEUED


def test_a_beat_after_a_quiet_spell_goes_at_once_and_the_next_ones_gather() -> None:
    reg = Registry(liveness_sec=3.0, request_timeout=10.0, queue_max=100)
    reg.ready(b"w", "s", 0.0)
    svc = reg.service("s")
    reg.enqueue("s", b"r1", b"h", b"beat", 5.0, gather=True, kind=Kind.BEAT)
    assert reg.flush_at(svc, 0.002, 500, quiet=0.02) == 0.0  # nothing went for long: no wait
    svc.popleft()
    svc.flushed = 5.0
    reg.enqueue("s", b"r2", b"h", b"beat", 5.001, gather=True, kind=Kind.BEAT)
    assert abs(reg.flush_at(svc, 0.002, 500, quiet=0.02) - 5.003) < 1e-9  # busy: it gathers


def test_beats_alone_wait_their_own_gather_and_anything_else_takes_them_along() -> None:
    """Beats the broker answered wait up to beats_gather for company; a task report that
    joins them sends the queue on the usual terms, and the count of beats follows the queue."""
    reg = Registry(liveness_sec=3.0, request_timeout=10.0, queue_max=100)
    reg.ready(b"w", "s", 0.0)
    svc = reg.service("s")
    reg.enqueue("s", b"r1", b"h", b"beat", 5.0, gather=True, kind=Kind.BEAT)
    reg.enqueue("s", b"r1", b"h", b"newer", 5.1, gather=True, kind=Kind.BEAT)  # replaces it
    reg.enqueue("s", b"r2", b"h", b"beat", 5.1, gather=True, kind=Kind.BEAT)
    assert svc.beats == 2
    assert reg.flush_at(svc, 0.002, 500, quiet=0.02, beats_gather=0.25) == 5.25  # no quiet rule
    assert reg.flush_at(svc, 0.002, 500, quiet=0.02) == 0.0  # without it: the old terms
    reg.enqueue("s", b"r3", b"h", b"report", 5.2, gather=True, kind=Kind.RESERVED)
    assert reg.flush_at(svc, 0.002, 500, quiet=0.02, beats_gather=0.25) == 0.0
    assert [svc.popleft().kind for _ in range(3)] == [Kind.BEAT, Kind.BEAT, Kind.RESERVED]
    assert svc.beats == 0
    reg.enqueue("s", b"r4", b"h", b"beat", 6.0, gather=True, kind=Kind.BEAT)
    reg.expire_requests(now=16.5)
    assert svc.beats == 0 and not svc.queue
