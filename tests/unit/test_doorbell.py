"""The statistics writer's doorbell: real Unix datagram sockets."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from stats import doorbell
from stats.backends import SQLiteBackend
from stats.writer import StatsWriter


def test_a_ring_ends_the_wait_and_every_ring_that_came_is_taken(tmp_path: Path) -> None:
    bell = doorbell.Doorbell(tmp_path / "b")
    ringer = doorbell.Ringer(tmp_path / "b")
    try:
        began = time.monotonic()
        assert not bell.wait(0.2)  # nobody rang: the whole timeout
        assert time.monotonic() - began >= 0.15
        for _ in range(3):
            ringer.ring()
        assert bell.wait(5.0)
        assert not bell.wait(0.05)  # the three rings were one wake
    finally:
        ringer.close()
        bell.close()
    assert not (tmp_path / "b").exists()


def test_ringing_without_a_writer_is_harmless(tmp_path: Path) -> None:
    ringer = doorbell.Ringer(tmp_path / "nobody")
    ringer.ring()
    ringer.close()


def test_the_doorbell_lives_beside_the_workers_socket(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AFSERVER_WORKERS", "ipc:///tmp/afserver-x/workers")
    monkeypatch.setenv("AFSERVER_WORKER_SECRET", "s")
    assert doorbell.path_from_env() == Path("/tmp/afserver-x/stats.bell")
    monkeypatch.delenv("AFSERVER_WORKERS")
    assert doorbell.path_from_env() is None


def test_the_writer_sleeps_until_rung_and_stops_at_once(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite"
    import sqlite3

    db = sqlite3.connect(store)
    db.execute("CREATE TABLE stats_outbox (id INTEGER PRIMARY KEY, tbl TEXT, row TEXT)")
    db.commit()
    bell = doorbell.Doorbell(tmp_path / "bell")
    writer = StatsWriter(store, SQLiteBackend(tmp_path / "stats.sqlite"), bell)
    writer.rest_sec = 60.0
    thread = threading.Thread(target=writer.run)
    thread.start()
    try:
        time.sleep(0.8)  # its first look is done: now it sleeps on the bell
        db.execute(
            "INSERT INTO stats_outbox(tbl, row) VALUES('logs', ?)",
            ('{"time":1,"subject":"s","type":"t","object":"o","info":"i"}',),
        )
        db.commit()
        time.sleep(1.0)
        assert writer.written == 0  # not rung: it did not look (60 s safety net)
        doorbell.Ringer(tmp_path / "bell").ring()
        deadline = time.monotonic() + 10
        while writer.written == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.written == 1
    finally:
        began = time.monotonic()
        writer.stop()
        thread.join(5)
        assert not thread.is_alive() and time.monotonic() - began < 2
        bell.close()
        db.close()
