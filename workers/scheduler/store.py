"""The scheduler's durable store: an embedded SQLite database (WAL) in af_store_folder.

Rows hold one node each as JSON beside its key columns, so adding a field needs no
migration; the schema version guards the table layout itself. A file that is not a
readable database of ours stops the server with a clear message and is left untouched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("store")

SCHEMA_VERSION = 5
FILE_NAME = "farm.sqlite"

_MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE renders (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL)",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL)",
    ],
    2: [
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT NOT NULL, user_name TEXT NOT NULL, "
        "done INTEGER NOT NULL, data TEXT NOT NULL)",
        # one row per block: what was submitted, its figures, and a snapshot of its task arrays
        "CREATE TABLE blocks (job_id INTEGER NOT NULL, idx INTEGER NOT NULL, definition TEXT NOT NULL, "
        "meta TEXT NOT NULL, states BLOB, starts BLOB, errors BLOB, time_start BLOB, time_done BLOB, "
        "hosts TEXT, PRIMARY KEY (job_id, idx)) WITHOUT ROWID",
        # task changes since the block's snapshot
        "CREATE TABLE tasks (job_id INTEGER NOT NULL, block INTEGER NOT NULL, task INTEGER NOT NULL, "
        "state INTEGER, starts INTEGER, errors INTEGER, time_start REAL, time_done REAL, host TEXT, "
        "PRIMARY KEY (job_id, block, task)) WITHOUT ROWID",
    ],
    3: ["CREATE TABLE pools (path TEXT PRIMARY KEY, data TEXT NOT NULL)"],
    # the system job's commands, queued or live, until they end
    4: [
        "CREATE TABLE syscommands (id INTEGER PRIMARY KEY, block INTEGER NOT NULL, data TEXT NOT NULL)"
    ],
    # statistics rows, committed with the change they record, until the writer has stored them
    5: [
        "CREATE TABLE stats_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, row TEXT NOT NULL)"
    ],
}

_SNAPSHOT = "meta=?, states=?, starts=?, errors=?, time_start=?, time_done=?, hosts=?"


class StoreError(RuntimeError):
    """The store cannot be used; the message says which file and why."""


class LeadershipLost(StoreError):
    """This server's session no longer holds the store's lock: another may be active."""


ACTIVE_KEY = "active_server"  # meta: the server that took the store last, and since when


class Store:
    """The SQLite store; pgstore.PgStore is the same on PostgreSQL. open_store picks one."""

    backend = "sqlite"
    MIGRATIONS = _MIGRATIONS  # by schema version; pgstore has its own types
    UPSERT_META = "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)"
    UPSERT_POOLS = "INSERT OR REPLACE INTO pools(path, data) VALUES(?, ?)"
    UPSERT_SYSCOMMANDS = "INSERT OR REPLACE INTO syscommands(id, block, data) VALUES(?, ?, ?)"
    UPSERT_TASKS = "INSERT OR REPLACE INTO tasks VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error,)
    leader = True  # one server per file: the embedded store has no standby

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / FILE_NAME
        self.on_commit: Callable[[], None] = _nothing  # the checkpoint thread's wake
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store folder {self.folder}: {exc}") from exc
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"store {self.path} is not a usable afanasy database ({exc}); "
                "it was left untouched: move it away to start with an empty farm"
            ) from exc

    def _migrate(self) -> None:
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema version {version}, newer than this server "
                f"({SCHEMA_VERSION}); it was left untouched"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                for statement in self.MIGRATIONS[target]:
                    self.db.execute(statement)
                self.set_meta("schema_version", str(target))
            log.info("store %s migrated to schema version %d", self.path, target)

    def try_acquire(self) -> bool:
        """Leadership (see pgstore): always ours on a file of our own."""
        return True

    def acquire(self, waiting: Callable[[], None] = lambda: None) -> None:
        """Leadership (see pgstore): always ours on a file of our own."""

    def holder(self) -> dict[str, Any] | None:
        return None

    def keep_alive(self) -> None:
        """Nothing to keep: no session to lose."""

    def transaction(self) -> _Transaction:
        return _Transaction(self.db, self.on_commit)

    def load(self, table: str) -> list[dict[str, Any]]:
        return [
            json.loads(data) for (data,) in self.db.execute(f"SELECT data FROM {table} ORDER BY id")
        ]

    def save(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        """Upsert nodes (each with id and name) in one transaction."""
        with self.transaction():
            self.db.executemany(
                f"INSERT INTO {table}(id, name, data) VALUES(?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name=excluded.name, data=excluded.data",
                [(r["id"], r["name"], json.dumps(r, separators=(",", ":"))) for r in rows],
            )

    def delete(self, table: str, ids: Iterable[int]) -> None:
        with self.transaction():
            self.db.executemany(f"DELETE FROM {table} WHERE id=?", [(i,) for i in ids])

    # --- pools -----------------------------------------------------------------------------

    def load_pools(self) -> list[dict[str, Any]]:
        return [
            json.loads(data) for (data,) in self.db.execute("SELECT data FROM pools ORDER BY path")
        ]

    def save_pools(self, pools: list[dict[str, Any]]) -> None:
        self.db.executemany(
            self.UPSERT_POOLS,
            [(p["path"], json.dumps(p, separators=(",", ":"))) for p in pools],
        )

    def delete_pools(self, paths: list[str]) -> None:
        self.db.executemany("DELETE FROM pools WHERE path=?", [(p,) for p in paths])

    # --- system job commands -----------------------------------------------------------------

    def load_syscommands(self) -> list[dict[str, Any]]:
        return [
            json.loads(data)
            for (data,) in self.db.execute("SELECT data FROM syscommands ORDER BY id")
        ]

    def save_syscommands(self, commands: list[dict[str, Any]]) -> None:
        self.db.executemany(
            self.UPSERT_SYSCOMMANDS,
            [(c["id"], c["block"], json.dumps(c, separators=(",", ":"))) for c in commands],
        )

    def delete_syscommands(self, ids: list[int]) -> None:
        self.db.executemany("DELETE FROM syscommands WHERE id=?", [(i,) for i in ids])

    def add_stats(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        self.db.executemany(
            "INSERT INTO stats_outbox(tbl, row) VALUES(?, ?)",
            [(table, json.dumps(row, separators=(",", ":"))) for table, row in rows],
        )

    # --- meta ------------------------------------------------------------------------------

    def meta(self, key: str, default: str = "") -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(self.UPSERT_META, (key, value))

    # --- jobs ------------------------------------------------------------------------------

    def insert_job(
        self, job_row: tuple[Any, ...], blocks: list[tuple[Any, ...]], next_job_id: int
    ) -> None:
        """A submission, whole, in one transaction: committed before the client hears of it."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO jobs(id, name, user_name, done, data) VALUES(?, ?, ?, ?, ?)", job_row
            )
            self.db.executemany(
                "INSERT INTO blocks(job_id, idx, definition, meta, states, starts, errors, time_start, "
                "time_done, hosts) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                blocks,
            )
            self.set_meta("next_job_id", str(next_job_id))

    def save_jobs(self, rows: list[tuple[Any, ...]]) -> None:
        self.db.executemany(
            "INSERT INTO jobs(id, name, user_name, done, data) VALUES(?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE "
            "SET name=excluded.name, user_name=excluded.user_name, done=excluded.done, data=excluded.data",
            rows,
        )

    def save_blocks(self, rows: list[tuple[Any, ...]]) -> None:
        """Blocks written whole, definition and snapshot (appended, or appended to): their
        task rows go, the snapshot holds them."""
        self.db.executemany(
            "INSERT INTO blocks(job_id, idx, definition, meta, states, starts, errors, "
            "time_start, time_done, hosts) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(job_id, idx) DO UPDATE SET definition=excluded.definition, "
            "meta=excluded.meta, states=excluded.states, starts=excluded.starts, "
            "errors=excluded.errors, time_start=excluded.time_start, "
            "time_done=excluded.time_done, hosts=excluded.hosts",
            rows,
        )
        self.db.executemany("DELETE FROM tasks WHERE job_id=? AND block=?", [r[:2] for r in rows])

    def save_block_meta(self, rows: list[tuple[str, int, int]]) -> None:
        self.db.executemany("UPDATE blocks SET meta=? WHERE job_id=? AND idx=?", rows)

    def save_tasks(self, rows: list[tuple[Any, ...]]) -> None:
        self.db.executemany(self.UPSERT_TASKS, rows)

    def save_snapshots(self, rows: list[tuple[Any, ...]]) -> None:
        """New block snapshots (meta, arrays..., hosts, job_id, idx): their task rows go."""
        self.db.executemany(f"UPDATE blocks SET {_SNAPSHOT} WHERE job_id=? AND idx=?", rows)
        self.db.executemany("DELETE FROM tasks WHERE job_id=? AND block=?", [r[-2:] for r in rows])

    def delete_jobs(self, ids: list[int]) -> None:
        for table, column in (("jobs", "id"), ("blocks", "job_id"), ("tasks", "job_id")):
            self.db.executemany(f"DELETE FROM {table} WHERE {column}=?", [(i,) for i in ids])

    def load_jobs(
        self,
    ) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        """Each job that is not done, with its block rows and task rows, in id order.

        Done jobs are not read here (see done_jobs): restart time does not grow with them."""
        open_jobs = "(SELECT id FROM jobs WHERE done=0)"
        blocks: dict[int, list[tuple[Any, ...]]] = {}
        for row in self.db.execute(
            "SELECT job_id, idx, definition, meta, states, starts, errors, time_start, time_done, hosts "
            f"FROM blocks WHERE job_id IN {open_jobs} ORDER BY job_id, idx"
        ):
            blocks.setdefault(row[0], []).append(row[1:])
        tasks: dict[int, list[tuple[Any, ...]]] = {}
        for row in self.db.execute(f"SELECT * FROM tasks WHERE job_id IN {open_jobs}"):
            tasks.setdefault(row[0], []).append(row)
        for row in self.db.execute(
            "SELECT id, name, user_name, done, data FROM jobs WHERE done=0 ORDER BY id"
        ):
            yield row, blocks.get(row[0], []), tasks.get(row[0], [])

    def done_jobs(self) -> list[tuple[int, str, str]]:
        """(id, name, user name) of done jobs: all a restart needs of them."""
        return list(
            self.db.execute("SELECT id, name, user_name FROM jobs WHERE done=1 ORDER BY id")
        )

    def load_job(
        self, job_id: int
    ) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]] | None:
        row = self.db.execute(
            "SELECT id, name, user_name, done, data FROM jobs WHERE id=?", (job_id,)
        ).fetchone()
        if row is None:
            return None
        blocks = [
            r[1:]
            for r in self.db.execute(
                "SELECT job_id, idx, definition, meta, states, starts, errors, time_start, time_done, hosts "
                "FROM blocks WHERE job_id=? ORDER BY idx",
                (job_id,),
            )
        ]
        tasks = list(self.db.execute("SELECT * FROM tasks WHERE job_id=?", (job_id,)))
        return row, blocks, tasks

    # --- checks ----------------------------------------------------------------------------

    def check(self) -> dict[str, Any]:
        """Size, counts and SQLite's own integrity check, for `afcmd store_check`."""
        counts = {
            t: self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("jobs", "blocks", "tasks", "renders", "users", "pools")
        }
        integrity = [r[0] for r in self.db.execute("PRAGMA quick_check")]
        size = sum(p.stat().st_size for p in self.folder.glob(FILE_NAME + "*") if p.is_file())
        return {
            "path": str(self.path),
            "backend": self.backend,
            "schema_version": SCHEMA_VERSION,
            "size_bytes": size,
            "rows": counts,
            "integrity": "ok" if integrity == ["ok"] else integrity[:20],
        }

    def close(self) -> None:
        self.db.close()


def _nothing() -> None:
    pass


class _Transaction:
    """BEGIN/COMMIT, or ROLLBACK on error; inside an open transaction it joins that one."""

    def __init__(self, db: sqlite3.Connection, on_commit: Callable[[], None]) -> None:
        self.db = db
        self.on_commit = on_commit
        self.outer = False

    def __enter__(self) -> sqlite3.Connection:
        self.outer = not self.db.in_transaction
        if self.outer:
            self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        """A COMMIT that fails (a full disk) is rolled back too, so that the next BEGIN
        starts clean; a ROLLBACK SQLite already did itself is not asked for again, and a
        failing one never hides the error that caused it."""
        if not self.outer:
            return
        if exc_type is None:
            try:
                self.db.execute("COMMIT")
                self.on_commit()
                return
            except sqlite3.Error:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self.db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")


def open_store(cfg: Any, name: str = "") -> Store:
    """The store the configuration names: PostgreSQL when af_store_db holds a connection
    string, else the SQLite file in af_store_folder. A PostgreSQL store is not usable
    before its acquire() returned (this server is the active one)."""
    conninfo = str(cfg.get("af_store_db", "") or "").strip()
    if not conninfo:
        return Store(cfg["af_store_folder"])
    from workers.scheduler.pgstore import PgStore  # psycopg only where it is used

    return PgStore(conninfo, name=name)
