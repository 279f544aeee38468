"""The store's rows, on each backend: SQLite (a file of its own per test) and PostgreSQL (one
database made for the run, named af_pg_*, emptied before each test, dropped at the end).

Without a PostgreSQL at 127.0.0.1:5432 the PostgreSQL cases are skipped with the reason;
with AF_TEST_REQUIRE_PG set (CI) they fail instead."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_REQUIRED_ENV
from workers.scheduler.store import FILE_NAME, SCHEMA_VERSION, Store, StoreError, open_store

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.Error as exc:
        if os.environ.get(PG_REQUIRED_ENV):
            pytest.fail(f"PostgreSQL is required here ({PG_REQUIRED_ENV}) but unreachable: {exc}")
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 ({exc})")
    name = f"af_pg_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    finally:
        with contextlib.suppress(psycopg.Error), psycopg.connect(PG_ADMIN, autocommit=True) as a:
            a.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


OpenStore = Callable[[], Store]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_farm_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Opens (and acquires) the test's store; each call a new connection to the same one."""
    cfg = {"af_store_folder": str(tmp_path), "af_store_db": ""}
    if request.param == "postgresql":
        import psycopg

        conninfo = request.getfixturevalue("pg_database")
        with psycopg.connect(conninfo, autocommit=True) as db:  # empty for this test
            db.execute("DROP SCHEMA public CASCADE")
            db.execute("CREATE SCHEMA public")
        cfg["af_store_db"] = conninfo
    opened: list[Store] = []

    def make() -> Store:
        store = open_store(cfg)
        store.acquire()
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def test_round_trip_and_upsert(open_farm_store: OpenStore) -> None:
    store = open_farm_store()
    store.save("renders", [{"id": 1, "name": "a", "x": 1}, {"id": 2, "name": "b"}])
    store.save("renders", [{"id": 1, "name": "a", "x": 2}])
    store.close()
    again = open_farm_store()
    assert again.load("renders") == [{"id": 1, "name": "a", "x": 2}, {"id": 2, "name": "b"}]
    again.delete("renders", [1])
    assert [r["id"] for r in again.load("renders")] == [2]


def test_failed_transaction_changes_nothing(open_farm_store: OpenStore) -> None:
    store = open_farm_store()
    store.save("renders", [{"id": 1, "name": "a"}])
    with pytest.raises(store.ERRORS):
        store.save("renders", [{"id": 2, "name": "b"}, {"id": 3, "name": "a"}])  # duplicate name
    assert [r["name"] for r in store.load("renders")] == ["a"]


def _job_rows(job_id: int) -> tuple[tuple[object, ...], list[tuple[object, ...]]]:
    job = (job_id, f"job{job_id}", "alice", 0, '{"k":1}')
    blocks = [
        (job_id, i, '{"name":"b"}', '{"m":0}', b"\x00\x01", b"\x02", b"", b"\x03\x04", None, "[]")
        for i in range(2)
    ]
    return job, blocks


def test_jobs_tasks_and_snapshots_round_trip(open_farm_store: OpenStore) -> None:
    store = open_farm_store()
    job, blocks = _job_rows(7)
    store.insert_job(job, blocks, next_job_id=8)
    with store.transaction():
        store.save_tasks([(7, 0, 3, 4, 1, 0, 1.5, 2.5, "r1"), (7, 1, 0, 2, 1, 1, 0.0, 0.0, "")])
        store.save_tasks([(7, 0, 3, 5, 2, 0, 1.5, 3.5, "r2")])  # the same task, again
        store.save_block_meta([('{"m":1}', 7, 1)])
    store.close()
    again = open_farm_store()
    assert again.meta("next_job_id") == "8"
    [(row, got_blocks, tasks)] = list(again.load_jobs())
    assert tuple(row) == job
    assert [tuple(bytes(x) if isinstance(x, memoryview) else x for x in b) for b in got_blocks] == [
        (0, '{"name":"b"}', '{"m":0}', b"\x00\x01", b"\x02", b"", b"\x03\x04", None, "[]"),
        (1, '{"name":"b"}', '{"m":1}', b"\x00\x01", b"\x02", b"", b"\x03\x04", None, "[]"),
    ]
    assert sorted(tuple(t) for t in tasks) == [
        (7, 0, 3, 5, 2, 0, 1.5, 3.5, "r2"),
        (7, 1, 0, 2, 1, 1, 0.0, 0.0, ""),
    ]
    with again.transaction():  # a new snapshot: the block's task rows go
        again.save_snapshots([('{"m":2}', b"\x09", b"", b"", b"", b"", "[]", 7, 0)])
        again.save_jobs([(7, "job7", "alice", 1, '{"k":2}')])
    assert list(again.load_jobs()) == []  # done jobs are not restored...
    assert [tuple(r) for r in again.done_jobs()] == [(7, "job7", "alice")]
    loaded = again.load_job(7)  # ...but read back on demand
    assert loaded is not None
    assert [tuple(t) for t in loaded[2]] == [(7, 1, 0, 2, 1, 1, 0.0, 0.0, "")]
    with again.transaction():
        again.delete_jobs([7])
    assert again.load_job(7) is None


def test_blocks_written_whole_replace_theirs_and_add_new_ones(open_farm_store: OpenStore) -> None:
    """What appended work stores (append_blocks / append_tasks), on either backend."""
    store = open_farm_store()
    job, blocks = _job_rows(9)
    store.insert_job(job, blocks[:1], next_job_id=10)
    with store.transaction():
        store.save_tasks([(9, 0, 1, 4, 1, 0, 1.5, 2.5, "r1")])
    redefined = (9, 0, '{"name":"b","n":2}', '{"m":5}', b"\x00", b"", b"", b"", None, "[]")
    added = (9, 1, '{"name":"c"}', '{"m":0}', b"\x01", b"", b"", b"", None, "[]")
    with store.transaction():
        store.save_blocks([redefined, added])
    store.close()
    [(_, got_blocks, tasks)] = list(open_farm_store().load_jobs())
    assert [(b[0], b[1], b[2]) for b in got_blocks] == [
        (0, '{"name":"b","n":2}', '{"m":5}'),
        (1, '{"name":"c"}', '{"m":0}'),
    ]
    assert list(tasks) == []  # the snapshot holds the redefined block's tasks


def test_pools_syscommands_stats_and_meta(open_farm_store: OpenStore) -> None:
    store = open_farm_store()
    with store.transaction():
        store.save_pools([{"path": "/", "x": 1}, {"path": "/a", "x": 1}])
        store.save_pools([{"path": "/a", "x": 2}])
        store.delete_pools(["/"])
        store.save_syscommands([{"id": 1, "block": 0, "c": "a"}, {"id": 2, "block": 1, "c": "b"}])
        store.save_syscommands([{"id": 1, "block": 0, "c": "a2"}])
        store.delete_syscommands([2])
        store.add_stats([("logs", {"m": 1}), ("tasks", {"m": 2})])
        store.set_meta("k", "1")
        store.set_meta("k", "2")
    assert store.load_pools() == [{"path": "/a", "x": 2}]
    assert store.load_syscommands() == [{"id": 1, "block": 0, "c": "a2"}]
    assert store.meta("k") == "2" and store.meta("missing", "d") == "d"
    rows = store.db.execute("SELECT tbl, row FROM stats_outbox ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [("logs", '{"m":1}'), ("tasks", '{"m":2}')]
    check = store.check()
    assert check["schema_version"] == SCHEMA_VERSION and check["integrity"] == "ok"
    assert check["rows"]["pools"] == 1 and check["size_bytes"] > 0


def test_newer_schema_is_refused(open_farm_store: OpenStore) -> None:
    store = open_farm_store()
    with store.transaction():
        store.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(StoreError, match="newer than this server"):
        open_farm_store()


def test_corrupt_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    garbage = b"this is not a database" * 100
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match="left untouched") as err:
        Store(tmp_path)
    assert str(path) in str(err.value)
    assert path.read_bytes() == garbage


def test_sqlite_file_is_the_default(tmp_path: Path) -> None:
    store = open_store({"af_store_folder": str(tmp_path), "af_store_db": ""})
    assert store.backend == "sqlite" and isinstance(store.db, sqlite3.Connection)
    store.close()
    assert (tmp_path / FILE_NAME).is_file()


# --- leadership (PostgreSQL only) ---------------------------------------------------------


@pytest.fixture
def pg_store_info(pg_database: str) -> str:
    import psycopg

    with psycopg.connect(pg_database, autocommit=True) as db:
        db.execute("DROP SCHEMA public CASCADE")
        db.execute("CREATE SCHEMA public")
    return pg_database


def test_one_active_the_other_waits_then_takes_over(pg_store_info: str) -> None:
    from workers.scheduler.pgstore import PgStore

    active, standby = PgStore(pg_store_info), PgStore(pg_store_info)
    try:
        assert active.try_acquire()
        assert not standby.try_acquire()
        assert not standby.leader
        with pytest.raises(StoreError, match="not the active one"), standby.transaction():
            standby.set_meta("k", "standby")
        holder = standby.holder()
        assert holder is not None and holder["pid"] == active.db.conn.info.backend_pid
        with active.transaction():
            active.set_meta("k", "active")
        active.close()  # the session ends: its lock goes with it (once PostgreSQL sees it)
        deadline = time.monotonic() + 10
        while not standby.try_acquire():
            assert time.monotonic() < deadline, "the closed session kept its lock"
            time.sleep(0.05)
        assert standby.meta("k") == "active"
    finally:
        active.close()
        standby.close()


def test_a_server_whose_session_was_ended_commits_nothing(pg_store_info: str) -> None:
    """Fencing: the session holding the lock is ended (a frozen server past its lease, a
    PostgreSQL restart); the old active's next commit fails and writes nothing."""
    import psycopg

    from workers.scheduler.pgstore import LeadershipLost, PgStore

    old, new = PgStore(pg_store_info), PgStore(pg_store_info)
    try:
        assert old.try_acquire()
        with psycopg.connect(pg_store_info, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (old.db.conn.info.backend_pid,))
        assert new.try_acquire()
        with pytest.raises(LeadershipLost), old.transaction():
            old.set_meta("k", "old")
        assert not old.leader
        with pytest.raises(LeadershipLost):
            old.keep_alive()
        assert new.meta("k") == ""
    finally:
        old.close()
        new.close()


def test_an_idle_session_loses_the_lock_after_its_lease(pg_store_info: str) -> None:
    """A server frozen (SIGSTOP) sends nothing: PostgreSQL ends its idle session after the
    lease, and a standby gets the lock. Polled with a deadline, not slept."""
    from workers.scheduler.pgstore import PgStore

    frozen, standby = PgStore(pg_store_info, lease_sec=1), PgStore(pg_store_info)
    try:
        assert frozen.try_acquire()
        deadline = time.monotonic() + 10
        while not standby.try_acquire():
            assert time.monotonic() < deadline, "the idle session kept its lock"
            time.sleep(0.1)
    finally:
        frozen.close()
        standby.close()
