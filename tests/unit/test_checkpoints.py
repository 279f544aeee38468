"""The store's log is copied by the checkpoint thread, not by the loop's commits."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for
from workers.scheduler import checkpoints
from workers.scheduler.checkpoints import Checkpointer
from workers.scheduler.store import FILE_NAME, Store

PAGE = 4096
ROW = b"x" * 3000  # one row a page, near enough


@pytest.fixture
def store(tmp_path: Path):
    store = Store(tmp_path)
    store.db.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    checkpoints.configure_writer(store.db)
    yield store
    store.close()


def commit_rows(store: Store, count: int) -> None:
    for _ in range(count):
        with store.transaction() as db:
            db.execute("INSERT INTO filler(data) VALUES(?)", (ROW,))


def sizes(folder: Path) -> tuple[int, int]:
    """(database file, log file) in bytes."""
    return (folder / FILE_NAME).stat().st_size, (folder / f"{FILE_NAME}-wal").stat().st_size


def test_commits_of_the_loop_do_not_copy_the_log(store: Store, tmp_path: Path) -> None:
    # SQLite's default would copy (and sync) at 1,000 pages, inside one of these commits
    commit_rows(store, 2500)
    database, log = sizes(tmp_path)
    assert log > 2500 * PAGE
    assert database < 100 * PAGE
    checkpointer = Checkpointer(store.path, interval=0.01)
    checkpointer.start()
    try:
        wait_for(
            lambda: sizes(tmp_path)[0] >= 2500 * 3000,
            10,
            "the thread to copy the log into the database file",
        )
    finally:
        checkpointer.stop()
    assert not checkpointer.thread.is_alive()
    assert store.db.execute("SELECT count(*) FROM filler").fetchone() == (2500,)


def test_the_log_is_begun_again_while_the_loop_commits(store: Store, tmp_path: Path) -> None:
    """A loop that commits every pass never lets a passive copy catch up with it: without
    the RESTART the log file would hold every page written."""
    restart = 200
    checkpointer = Checkpointer(store.path, interval=0.02, restart_pages=restart)
    store.on_commit = checkpointer.wake
    checkpointer.start()
    written = 0
    deadline = time.monotonic() + 30
    try:
        while checkpointer.restarts < 3 or written < 8000:
            assert time.monotonic() < deadline, (
                f"{checkpointer.restarts} restarts after {written} commits"
            )
            commit_rows(store, 1)
            written += 1
            # a busy loop commits a few thousand times a second, a passive copy (which
            # syncs) takes longer than the gap, and the log is never all copied
            time.sleep(0.0002)
    finally:
        checkpointer.stop()
    _database, log = sizes(tmp_path)
    # the file keeps the largest size the log ever reached: a pass delayed on a loaded
    # machine lets it grow well past restart_pages once (8 x 200 pages failed 2 runs in 5
    # on a slow day, before this session's changes too). Without any RESTART it would hold
    # every page written: at least a page a commit.
    assert log < written * PAGE, (log, written, checkpointer.restarts, checkpointer.busy)
    assert store.db.execute("SELECT count(*) FROM filler").fetchone() == (written,)


def test_a_reader_does_not_make_the_restart_hold_the_loop(store: Store, tmp_path: Path) -> None:
    """A reader keeps the log from being begun again; the RESTART gives up soon, and the
    loop's commits go on, instead of waiting for the reader with it."""
    reader = sqlite3.connect(store.path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM filler").fetchone()  # a snapshot, held
    checkpointer = Checkpointer(store.path, interval=0.01, restart_pages=100)
    store.on_commit = checkpointer.wake
    checkpointer.start()
    slowest = 0.0
    deadline = time.monotonic() + 30
    try:
        while checkpointer.busy < 5:
            assert time.monotonic() < deadline, f"{checkpointer.busy} RESTARTs gave up"
            began = time.perf_counter()
            commit_rows(store, 1)
            slowest = max(slowest, time.perf_counter() - began)
            time.sleep(0.0002)
        assert checkpointer.restarts == 0
        reader.rollback()  # the reader leaves: the log is begun again
        while checkpointer.restarts < 1:
            assert time.monotonic() < deadline, "no RESTART after the reader left"
            commit_rows(store, 1)
            time.sleep(0.0002)
    finally:
        checkpointer.stop()
        reader.close()
    # waiting out the reader with the write lock held (a busy timeout of seconds) held
    # each of these commits as long; the bound is loose, the failure is not
    assert slowest < 0.5


def test_a_store_at_rest_gets_no_pass_and_a_commit_gets_one(store: Store) -> None:
    """Nothing committed, nothing to copy: the thread sleeps (a farm at rest asked SQLite
    twice a second for nothing). A commit wakes it."""
    checkpointer = Checkpointer(store.path, interval=0.01)
    store.on_commit = checkpointer.wake
    checkpointer.start()
    try:
        wait_for(lambda: checkpointer.passes >= 1, 10, "the first pass, at start")
        before = checkpointer.passes
        # twenty intervals with no commit: a timer-driven thread would have passed 20 times
        assert not checkpointer.stopped.wait(0.2)
        assert checkpointer.passes == before
        commit_rows(store, 1)
        wait_for(lambda: checkpointer.passes > before, 10, "a pass after the commit")
    finally:
        checkpointer.stop()
    assert not checkpointer.thread.is_alive()


def test_a_failing_checkpoint_is_tried_again(tmp_path: Path) -> None:
    """A store the thread cannot open yet: it logs, waits and tries again, and stops when
    asked."""
    missing = tmp_path / "not-yet" / FILE_NAME
    checkpointer = Checkpointer(missing, interval=0.01)
    checkpointer.start()
    wait_for(lambda: checkpointer.failures >= 2, 10, "two failed tries")
    missing.parent.mkdir()
    Store(missing.parent).close()
    wait_for(lambda: checkpointer.passes >= 1, 10, "a checkpoint once the store is there")
    checkpointer.stop()
    assert not checkpointer.thread.is_alive()
