"""APScheduler's skips on a starved process: said once, then counted, never a line each."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import zmq

from workers.scheduler.periodic import SKIPPED, Periodic


@pytest.fixture
def periodic():
    ctx = zmq.Context()
    p = Periodic(ctx)
    yield p
    p.shutdown()
    ctx.term()


def test_a_check_skipped_again_and_again_is_said_once_with_why(periodic, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    hold = threading.Event()
    # the pool's one thread held: each check's next time finds its last post still queued
    periodic.scheduler.add_job(hold.wait, "date", args=[5.0], id="hold")
    periodic.every(0.02, "refresh")
    periodic.start()
    deadline = time.monotonic() + 30
    while periodic.skipped < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    hold.set()
    assert periodic.skipped >= 20
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [m for m in lines if "maximum number of running instances" in m], lines
    said = [m for m in lines if "check refresh skipped" in m]
    assert len(said) == 1, lines
    assert "short of CPU" in said[0]
    periodic.flush(everything=True)
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith(SKIPPED + ":")]
    assert len(summary) == 1 and " more in the last " in summary[0], summary
