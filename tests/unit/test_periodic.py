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


def test_checks_of_one_pace_share_one_timer_and_one_post(periodic) -> None:
    periodic.every(0.05, "refresh")
    periodic.every(0.05, "check_renders")
    periodic.every(0.05, "gc_freeze")
    periodic.every(3600, "gc_collect_all")
    periodic.every(0.02, "check_renders")  # its round sped up: it leaves the shared timer
    jobs = {job.id: job.trigger.interval.total_seconds() for job in periodic.scheduler.get_jobs()}
    assert jobs == {"gc_freeze, refresh": 0.05, "check_renders": 0.02, "gc_collect_all": 3600}
    assert periodic.pace("check_renders") == 0.02 and periodic.pace("nothing") is None
    periodic.start()
    posts: list[list[bytes]] = []
    deadline = time.monotonic() + 10
    while len([p for p in posts if b"refresh" in p]) < 3 and time.monotonic() < deadline:
        if periodic.pull.poll(100):
            posts.append(periodic.pull.recv_multipart())
    shared = [p for p in posts if b"refresh" in p]
    assert len(shared) >= 3 and all(p == [b"gc_freeze", b"refresh"] for p in shared), posts
    assert [b"check_renders"] in posts
