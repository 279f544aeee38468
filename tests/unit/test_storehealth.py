"""A full or unwritable store: which errors mean it, the DEGRADED state machine, a flush that
fails and is tried again whole, and task output cut by a full disk (/dev/full)."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from workers.scheduler.farm import Farm, Refused, Registration
from workers.scheduler.output import OutputStore
from workers.scheduler.pools import Builtins
from workers.scheduler.solver import Solver
from workers.scheduler.states import State
from workers.scheduler.store import Store
from workers.scheduler.storehealth import Fault, StoreHealth, store_fault
from workers.scheduler.sync import FarmStore, StoreFaulted

NOW = 1_000_000.0
FULL = Fault("full", "no space left on device")


def sqlite_error(tmp_path: Path, *, readonly: bool = False) -> sqlite3.Error:
    """A real error from SQLite: a database that may not grow (SQLITE_FULL), or one opened
    read-only (SQLITE_READONLY)."""
    path = tmp_path / ("ro.sqlite" if readonly else "full.sqlite")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE t (x BLOB)")
    db.close()
    if readonly:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)
    else:
        db = sqlite3.connect(path, isolation_level=None)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(sqlite3.Error) as caught:
        db.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))
    db.close()
    return caught.value


def test_full_and_unwritable_are_told_from_other_errors(tmp_path: Path) -> None:
    assert store_fault(sqlite_error(tmp_path)) == FULL
    readonly = store_fault(sqlite_error(tmp_path, readonly=True))
    assert readonly is not None and readonly.kind == "unwritable"
    assert "readonly" in readonly.detail
    assert store_fault(OSError(errno.ENOSPC, "No space left on device")) == FULL
    assert store_fault(OSError(errno.EDQUOT, "Disk quota exceeded")) == Fault(
        "full", "disk quota exceeded"
    )
    assert store_fault(OSError(errno.EROFS, "Read-only file system")) == Fault(
        "unwritable", "read-only file system"
    )
    assert store_fault(OSError(errno.EACCES, "Permission denied")) == Fault(
        "unwritable", "permission denied"
    )
    # not a store that fills or locks up: a bug or a broken file, which must not be hidden
    assert store_fault(OSError(errno.ENOENT, "No such file or directory")) is None
    assert store_fault(sqlite3.IntegrityError("UNIQUE constraint failed")) is None
    db = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.Error) as caught:
        db.execute("SELECT * FROM missing")
    assert store_fault(caught.value) is None
    assert store_fault(ValueError("no")) is None


def test_degraded_is_said_once_reminded_each_minute_and_left_once() -> None:
    health = StoreHealth("/var/store", retry_sec=1.0, remind_sec=60.0)
    assert not health.degraded and health.refusal() is None and health.due(0.0)
    line = health.failed(FULL, "commit", 10.0)
    assert line is not None and line.startswith(
        "store full: no space left on device; free space in /var/store (on commit)"
    )
    assert health.refusal() == "store full: no space left on device; free space in /var/store"
    assert health.failed(FULL, "task output", 10.2) is None  # counted, not said again
    assert not health.due(10.9) and health.due(11.0)  # output failures did not delay it
    assert health.failed(FULL, "commit", 11.0) is None
    assert health.next_retry == 12.0
    assert health.reminder(69.0) is None
    reminder = health.reminder(70.0)
    assert reminder is not None and "still degraded after 60 s, 3 writes refused" in reminder
    assert health.reminder(100.0) is None and health.reminder(130.0) is not None
    state = health.to_json(40.0)
    assert state["state"] == "degraded" and state["seconds"] == 30.0
    assert state["writes_refused"] == {"commit": 2, "task output": 1}
    # another kind of fault is said at once
    unwritable = health.failed(Fault("unwritable", "read-only file system"), "commit", 140.0)
    assert unwritable is not None and unwritable.startswith(
        "store unwritable: read-only file system; make /var/store writable"
    )
    recovered = health.recovered(150.0)
    assert recovered is not None and "writable again after 140 s" in recovered
    assert not health.degraded and health.refusal() is None and health.due(150.0)
    assert health.recovered(151.0) is None
    assert health.to_json(151.0) == {"state": "ok", "folder": "/var/store", "degraded_times": 1}
    assert health.failed(FULL, "commit", 200.0) is not None  # a new episode is said again
    assert health.to_json(200.0)["writes_refused"] == {"commit": 1}


def test_a_flush_that_fails_keeps_every_change_and_writes_them_all_later(tmp_path: Path) -> None:
    farm = Farm(Builtins(), NOW)
    sync = FarmStore(Store(tmp_path), farm)
    sync.restore(NOW)
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 20, "command": "c"}
    job = farm.add_job({"name": "j", "blocks": [block]}, "jimmy", "ws", NOW)
    sync.insert_job(job)
    for n in range(3):
        farm.register_render(f"R:{n}".encode(), Registration(name=f"r{n}"), NOW)
    starts = Solver(farm).solve(NOW)
    assert starts
    db = sync.store.db
    db.execute(f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0]}")
    # a statistics row too big for the pages left: written last, after the task rows
    farm.stats_rows.append(("tasks", {"padding": "y" * 50_000}))
    with pytest.raises(sqlite3.Error) as caught:
        sync.flush()
    assert store_fault(caught.value) == FULL
    assert not db.in_transaction  # rolled back: the next flush begins anew
    assert farm.dirty_renders and farm.dirty_blocks and farm.stats_rows and sync.commits == 0
    assert all(b.dirty for b in farm.dirty_blocks)
    # a submission meanwhile is refused whole: not in the farm, not in the store
    with pytest.raises(StoreFaulted) as refused:
        big = {**block, "frame_last": 100_000}  # task arrays of pages the store has not got
        sync.insert_job(farm.add_job({"name": "k", "blocks": [big]}, "jimmy", "ws", NOW))
    assert isinstance(refused.value, Refused) and refused.value.fault == FULL
    assert [j.name for j in farm.jobs.values() if j.name == "k"] == []

    db.execute("PRAGMA max_page_count=1073741823")
    sync.flush()
    assert sync.commits == 1 and not farm.dirty_renders and not farm.dirty_blocks
    restarted = Farm(Builtins(), NOW)
    FarmStore(Store(tmp_path), restarted).restore(NOW)
    assert set(restarted.render_by_name) == {"r0", "r1", "r2"}
    assert sync.store.db.execute("SELECT count(*) FROM stats_outbox").fetchone()[0] == 1
    block_ = restarted.jobs[job.id].blocks[0]
    assert sum(1 for i in range(20) if block_.starts[i] == 1) == len(starts)
    assert "k" not in {j.name for j in restarted.jobs.values()}
    assert all(not block_.states[i] & State.DON for i in range(20))


def test_output_cut_by_a_full_disk_is_marked_and_later_chunks_dropped(tmp_path: Path) -> None:
    outputs = OutputStore(tmp_path, 1 << 20)
    key = (5, 0, 3)
    assert outputs.append(key, 1, b"first\n") is None
    path = outputs.path(key, 1)
    path.unlink()
    path.symlink_to("/dev/full")  # every write: ENOSPC, as on a full store
    failed = outputs.append(key, 1, b"second\n")
    assert failed is not None and failed.errno == errno.ENOSPC
    assert outputs.append(key, 1, b"third\n") is None  # dropped: no hole in the middle
    path.unlink()
    assert outputs.read(key, 1) == "\n[output truncated: no space left on device]\n"
    path.symlink_to("/dev/full")
    assert outputs.mend() == 0 and outputs.truncated  # still no room: kept for later
    path.unlink()
    assert outputs.mend() == 1 and not outputs.truncated
    assert path.read_text() == "\n[output truncated: no space left on device]\n"
    assert outputs.append(key, 1, b"fourth\n") is None
    assert "fourth" not in path.read_text()  # the run stays cut until its end
