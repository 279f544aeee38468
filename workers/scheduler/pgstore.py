"""The scheduler's store on PostgreSQL (psycopg 3), for farms that run a standby afserver.

The same rows as the SQLite store (store.py), the same calls: only the connection, the
table types and the upserts differ. The connection that writes holds a session-level
advisory lock: holding it is being the active server. Every commit first checks, inside its
transaction, that this session still holds the lock, so a server that lost it (its session
was ended: it froze past ``idle_session_timeout``, PostgreSQL restarted) cannot commit
anything: its statements fail and it stops. A standby waits for the lock (``acquire``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from workers.scheduler.store import SCHEMA_VERSION, LeadershipLost, Store, StoreError

log = logging.getLogger("store")

LOCK_KEY = 0x4146_5354  # "AFST": the advisory lock of the active server, per database
# A session idle this long is ended by PostgreSQL, which frees its lock: the active server
# commits or pings every second (keep_alive), so only a frozen one goes idle that long.
LEASE_SEC = 5
WAIT_POLL_SEC = 0.5  # how often a standby tries the lock

_PG_MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE renders (id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL)",
        "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL)",
    ],
    2: [
        "CREATE TABLE jobs (id BIGINT PRIMARY KEY, name TEXT NOT NULL, user_name TEXT NOT NULL, "
        "done INTEGER NOT NULL, data TEXT NOT NULL)",
        "CREATE TABLE blocks (job_id BIGINT NOT NULL, idx INTEGER NOT NULL, definition TEXT NOT NULL, "
        "meta TEXT NOT NULL, states BYTEA, starts BYTEA, errors BYTEA, time_start BYTEA, "
        "time_done BYTEA, hosts TEXT, PRIMARY KEY (job_id, idx))",
        "CREATE TABLE tasks (job_id BIGINT NOT NULL, block INTEGER NOT NULL, task INTEGER NOT NULL, "
        "state INTEGER, starts INTEGER, errors INTEGER, time_start DOUBLE PRECISION, "
        "time_done DOUBLE PRECISION, host TEXT, PRIMARY KEY (job_id, block, task))",
    ],
    3: ["CREATE TABLE pools (path TEXT PRIMARY KEY, data TEXT NOT NULL)"],
    4: [
        "CREATE TABLE syscommands (id BIGINT PRIMARY KEY, block INTEGER NOT NULL, data TEXT NOT NULL)"
    ],
    5: [
        "CREATE TABLE stats_outbox (id BIGSERIAL PRIMARY KEY, tbl TEXT NOT NULL, row TEXT NOT NULL)"
    ],
}
assert max(_PG_MIGRATIONS) == SCHEMA_VERSION


def describe(conninfo: str) -> str:
    """The connection string without its password, for logs and replies."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "postgresql (unparsable connection string)"
    params.pop("password", None)
    return "postgresql " + " ".join(f"{k}={v}" for k, v in sorted(params.items()))


class PgConnection:
    """psycopg's connection behind sqlite3's calls (? placeholders, execute, executemany),
    so that the store's queries are written once."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._sql: dict[str, str] = {}

    def _q(self, sql: str) -> str:
        text = self._sql.get(sql)
        if text is None:
            text = self._sql[sql] = sql.replace("%", "%%").replace("?", "%s")
        return text

    def execute(self, sql: str, params: Iterable[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(self._q(sql), tuple(params))

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        rows = [tuple(r) for r in rows]
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(self._q(sql), rows)

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self.conn.close()


class PgStore(Store):
    """The store on PostgreSQL; usable once ``acquire`` returned (this server is active)."""

    backend = "postgresql"
    MIGRATIONS = _PG_MIGRATIONS
    UPSERT_META = "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value"
    UPSERT_POOLS = "INSERT INTO pools(path, data) VALUES(?, ?) ON CONFLICT(path) DO UPDATE SET data=excluded.data"
    UPSERT_SYSCOMMANDS = (
        "INSERT INTO syscommands(id, block, data) VALUES(?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET block=excluded.block, data=excluded.data"
    )
    UPSERT_TASKS = (
        "INSERT INTO tasks VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(job_id, block, task) "
        "DO UPDATE SET state=excluded.state, starts=excluded.starts, errors=excluded.errors, "
        "time_start=excluded.time_start, time_done=excluded.time_done, host=excluded.host"
    )
    ERRORS: tuple[type[BaseException], ...] = (psycopg.Error,)

    def __init__(
        self, conninfo: str, lease_sec: int = LEASE_SEC, name: str = "", role: str = "standby"
    ) -> None:
        """`name`: this afserver (afserver@host:port), shown to the others in
        pg_stat_activity as `afserver <role> <name>`."""
        self.conninfo = conninfo
        self.name = name
        self.path = describe(conninfo)  # type: ignore[assignment]
        self.folder = self.path  # type: ignore[assignment]
        self.leader = False
        try:
            raw = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
            raw.execute(f"SET idle_session_timeout = '{int(lease_sec)}s'")
            raw.execute(
                "SELECT set_config('application_name', %s, false)", (f"afserver {role} {name}",)
            )
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the store {self.path}: {exc}") from exc
        self.db = PgConnection(raw)  # type: ignore[assignment]

    def try_acquire(self) -> bool:
        """Take the store's lock if no other session holds it; then migrate. True: active."""
        if not self.leader:
            got = self.db.execute("SELECT pg_try_advisory_lock(?)", (LOCK_KEY,)).fetchone()[0]
            if not got:
                return False
            self.leader = True
            self.db.execute(
                "SELECT set_config('application_name', ?, false)", (f"afserver active {self.name}",)
            )
            self._migrate()
        return True

    def acquire(self, waiting: Callable[[], None] = lambda: None) -> None:
        """Wait for the lock (a standby), calling ``waiting`` between tries."""
        while not self.try_acquire():
            waiting()
            time.sleep(WAIT_POLL_SEC)

    def holder(self) -> dict[str, Any] | None:
        """Who holds the lock, as far as PostgreSQL tells: its address and since when."""
        row = self.db.execute(
            "SELECT a.client_addr::text, a.client_port, a.backend_start::text, a.pid "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype='advisory' AND l.granted AND l.objid=? AND l.database="
            "(SELECT oid FROM pg_database WHERE datname=current_database())",
            (LOCK_KEY,),
        ).fetchone()
        if row is None:
            return None
        return {"client": f"{row[0]}:{row[1]}", "since": row[2], "pid": row[3]}

    def standbys(self) -> list[dict[str, Any]]:
        """The standby afservers connected to this store now (their sessions' names)."""
        rows = self.db.execute(
            "SELECT application_name, client_addr::text, backend_start::text FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE 'afserver standby %'"
            " ORDER BY backend_start"
        ).fetchall()
        return [
            {"server": name.removeprefix("afserver standby "), "client": addr, "since": start}
            for name, addr, start in rows
        ]

    def transaction(self) -> _PgTransaction:  # type: ignore[override]
        return _PgTransaction(self)

    def keep_alive(self) -> None:
        """A statement, so that PostgreSQL does not end the session of a server that is
        alive but has had nothing to commit for a while; fails if the session was ended."""
        try:
            self.db.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            self.leader = False
            raise LeadershipLost(f"store {self.path}: the session was lost ({exc})") from exc

    def check(self) -> dict[str, Any]:
        counts = {
            t: self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("jobs", "blocks", "tasks", "renders", "users", "pools")
        }
        size = self.db.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        return {
            "path": self.path,
            "backend": self.backend,
            "schema_version": SCHEMA_VERSION,
            "size_bytes": size,
            "rows": counts,
            "integrity": "ok",  # PostgreSQL checks its pages itself (checksums, WAL replay)
        }

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.db.close()


class _PgTransaction:
    """BEGIN, the lock check, COMMIT; ROLLBACK on error; joins a transaction already open.

    A session that was ended fails at BEGIN; one that is alive but does not hold the lock
    (never the case for a connection this class made: it never unlocks) fails the check."""

    def __init__(self, store: PgStore) -> None:
        self.store = store
        self.db = store.db
        self.outer = False

    def __enter__(self) -> PgConnection:
        self.outer = not self.db.in_transaction
        if self.outer:
            if not self.store.leader:
                raise LeadershipLost(f"store {self.store.path}: this server is not the active one")
            try:
                self.db.execute("BEGIN")
                held = self.db.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype='advisory' AND granted "
                    "AND objid=? AND pid=pg_backend_pid()",
                    (LOCK_KEY,),
                ).fetchone()[0]
            except psycopg.OperationalError as exc:
                self.store.leader = False
                raise LeadershipLost(
                    f"store {self.store.path}: the session holding the lock was lost ({exc}); "
                    "another server may be active now"
                ) from exc
            if not held:
                self.store.leader = False
                self._rollback()
                raise LeadershipLost(f"store {self.store.path}: this session lost the lock")
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        if not self.outer:
            return
        if exc_type is None:
            try:
                self.db.execute("COMMIT")
                return
            except psycopg.OperationalError as exc:
                self.store.leader = False
                raise LeadershipLost(
                    f"store {self.store.path}: commit failed, the session was lost ({exc})"
                ) from exc
            except psycopg.Error:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self.db.in_transaction and not self.db.conn.closed:
            with contextlib.suppress(psycopg.Error):
                self.db.execute("ROLLBACK")
