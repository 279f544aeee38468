"""The gateway's bounds: bytes of bodies held at once, and log lines of repeated faults."""

from __future__ import annotations

import logging

import pytest

from broker.rarelog import RareLog
from gateway.guard import Budget


def test_large_requests_leave_room_for_small_ones() -> None:
    budget = Budget(total=100, keep=20, small=5)
    big, other = budget.lease(), budget.lease()
    assert big.take(40) and other.take(30) and other.take(10)
    assert not budget.lease().take(10)  # large: would eat into the room kept for small ones
    small = [budget.lease() for _ in range(4)]
    assert all(lease.take(5) for lease in small)  # small ones still fit
    assert not budget.lease().take(5)  # ... up to the whole budget
    big.release()
    grown = budget.lease()
    assert grown.take(5) and grown.take(15)  # a request's cost, known in steps
    assert not grown.take(1)  # now large: the kept room is not for it
    assert grown.take(15, into_kept=True)  # ... except for the rest of its cost
    assert not grown.take(10, into_kept=True)  # never past the whole budget
    for lease in (other, grown, *small):
        lease.release()
    assert budget.free == 100 and other.held == 0 and grown.held == 0


def test_repeated_faults_are_logged_once_then_counted(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    faults = RareLog(logging.getLogger("test.faults"), 5.0, logging.INFO, clock=lambda: now[0])
    caplog.set_level(logging.INFO, "test.faults")
    for i in range(1000):
        faults.say("refused: garbage", f"junk {i}", f"10.0.0.{i % 7}")
        now[0] += 0.001
    faults.say("refused: too large", "70 MB", "10.0.0.1")
    assert [r.getMessage() for r in caplog.records] == [
        "refused: garbage from 10.0.0.0: junk 0",
        "refused: too large from 10.0.0.1: 70 MB",
    ]
    faults.flush()  # the period has not ended: nothing yet
    assert len(caplog.records) == 2
    now[0] = 5.5
    faults.flush()
    summary = caplog.records[-1].getMessage()
    assert summary.startswith("refused: garbage: 999 more in the last 6 s, (from 10.0.0.0, ")
    assert summary.endswith("and 2 more)")
    assert len(caplog.records) == 3  # no summary for a kind seen only once
    faults.say("refused: garbage", "again", "10.0.0.9")  # a new period: logged again
    assert caplog.records[-1].getMessage() == "refused: garbage from 10.0.0.9: again"


def test_a_summary_without_peers_names_the_latest(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    rare = RareLog(logging.getLogger("test.rare"), 10.0, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, "test.rare")
    for i in range(50):
        rare.say("bad headers", f"peer {i}: header must be 8 bytes")
    now[0] = 10.0
    rare.say("bad headers", "peer 50: header must be 8 bytes")  # the next period begins
    assert [r.getMessage() for r in caplog.records] == [
        "peer 0: header must be 8 bytes",
        "bad headers: 49 more in the last 10 s, the latest: peer 49: header must be 8 bytes",
        "peer 50: header must be 8 bytes",
    ]
