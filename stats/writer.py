"""The statistics writer: its own process (afserver's `stats` child) that moves rows from the
store's `stats_outbox` into the statistics database in batches.

The scheduler commits each row with the change it records, so a row waits durably until it
is written: while the database is down nothing is lost, and the outage is logged once.
The writer opens the store's SQLite file on its own and never touches farm objects; in a
process of its own, its decoding and database work take nothing from the scheduler loop
(as a thread they held the scheduler's interpreter lock: 7% of it on a busy farm).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sqlite3
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from stats import doorbell, stats_enabled
from stats.backends import Backend, StatsError, open_backend
from workers import watchdog

log = logging.getLogger("stats")

BATCH = 1000
POLL_SEC = 0.5  # how long rows gather after a ring (or between looks, without a doorbell)
RING_WAIT_MAX_SEC = 10.0  # with a doorbell: the longest sleep between looks (a safety net)
RETRY_SEC = 5.0  # after a failure to reach the statistics database


class StatsWriter:
    def __init__(
        self, store_path: str | Path, backend: Backend, bell: doorbell.Doorbell | None = None
    ) -> None:
        """`bell`: the scheduler rings it when it committed rows (without: look every
        POLL_SEC)."""
        self.store_path = Path(store_path)
        self.backend = backend
        self.bell = bell
        self.rest_sec = RING_WAIT_MAX_SEC  # main() keeps it within the watchdog's time
        self.alive = watchdog.beat_from_env()  # as a thread of the web: a Beat(None)
        self.last_pass = time.monotonic()  # a thread's health, for its process's beat
        self.stopped = threading.Event()
        self.written = 0
        self.outage: str | None = None
        self.tables_ready = False
        self.conn: Any = None  # the statistics database, kept open between batches

    def stop(self, *_: Any) -> None:
        self.stopped.set()
        if self.bell is not None:
            self.bell.ring()  # the wait ends at once

    def run(self) -> None:
        """Until stop(): the outbox in batches when the scheduler rings (rows gather for
        POLL_SEC first), at the latest every rest_sec; RETRY_SEC after a failure."""
        stopped = self.stopped
        db = self.open_outbox()
        if db is None:
            return
        try_at = 0.0
        try:
            while not stopped.is_set():
                self._alive()
                if time.monotonic() >= try_at:
                    while not stopped.is_set() and self.write_batch(db):
                        self._alive()
                    try_at = time.monotonic() + (RETRY_SEC if self.outage else 0.0)
                if self.bell is not None and not self.outage:
                    self.bell.wait(self.rest_sec)  # until rows were committed
                    self._alive()
                stopped.wait(POLL_SEC)
        finally:
            db.close()
            self._drop_connection()
            if self.bell is not None:
                self.bell.close()

    def _alive(self) -> None:
        self.last_pass = now = time.monotonic()
        self.alive(now)

    def healthy(self) -> bool:
        """Its loop went round lately (a wait on the bell, a batch, a retry at most): a
        thread's process stops beating its watchdog when it did not, and is restarted."""
        return time.monotonic() - self.last_pass <= self.rest_sec + POLL_SEC + RETRY_SEC

    def open_outbox(self) -> Any:
        """The store's SQLite file, once the scheduler made it; None if stopped meanwhile."""
        while not self.store_path.exists():  # the scheduler makes the store on its first start
            if self.stopped.wait(POLL_SEC):
                return None
        db = sqlite3.connect(self.store_path, timeout=10)
        db.execute("PRAGMA wal_autocheckpoint=0")  # the scheduler's thread copies the log
        return db

    def _drop_connection(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None

    def write_batch(self, db: sqlite3.Connection) -> bool:
        """One batch; True when a full batch went (there may be more)."""
        try:
            rows = db.execute(
                "SELECT id, tbl, row FROM stats_outbox ORDER BY id LIMIT ?", (BATCH,)
            ).fetchall()
        except sqlite3.DatabaseError as exc:  # a store not made yet, or one the scheduler
            log.debug("store not ready: %s", exc)  # refuses (and says so): wait and look again
            return False
        if not rows:
            return False
        if not self._write(rows):
            return False
        try:
            with db:  # ids are given in commit order, so the batch is all rows up to its last
                db.execute("DELETE FROM stats_outbox WHERE id <= ?", (rows[-1][0],))
        except sqlite3.DatabaseError as exc:  # busy past its timeout: written again next time
            log.warning("cannot clear %d written rows from the store's outbox: %s", len(rows), exc)
            return False
        self.written += len(rows)
        return len(rows) == BATCH

    def _write(self, rows: list[Any]) -> bool:
        """Rows (id, table, JSON) into the statistics database; False if it is away."""
        by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for _id, table, text in rows:
            by_table[table].append(json.loads(text))
        try:
            if not self.tables_ready:
                self.backend.update_tables()
                self.tables_ready = True
            if self.conn is None:
                self.conn = self.backend.open()
            self.backend.write(self.conn, by_table)
        except StatsError as exc:
            self._drop_connection()  # reconnect on the next try
            if self.outage is None:
                log.error("statistics database unreachable (%s): rows wait in the store", exc)
            self.outage = str(exc)
            return False
        if self.outage is not None:
            log.warning("statistics database back: writing the rows that waited")
            self.outage = None
        return True


class PgOutboxWriter(StatsWriter):
    """The same on a PostgreSQL store (af_store_db), which every afserver of the farm, active
    or standby, runs a writer on: each takes its batch with FOR UPDATE SKIP LOCKED and
    deletes it in the transaction that read it, once written, so two writers never take
    the same rows and none is lost when one dies (its transaction rolls back)."""

    def __init__(self, conninfo: str, backend: Backend) -> None:
        super().__init__(Path("/"), backend)
        self.conninfo = conninfo
        self.store: Any = None

    def open_outbox(self) -> Any:
        return self  # connected (again) in write_batch

    def close(self) -> None:
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()
            self.store = None

    def write_batch(self, db: Any) -> bool:
        import psycopg

        try:
            if self.store is None or self.store.closed:
                self.store = psycopg.connect(self.conninfo, connect_timeout=5)
            with self.store.transaction():
                rows = self.store.execute(
                    "SELECT id, tbl, row FROM stats_outbox ORDER BY id LIMIT %s "
                    "FOR UPDATE SKIP LOCKED",
                    (BATCH,),
                ).fetchall()
                if not rows:
                    return False
                if not self._write(rows):
                    raise _NotWritten
                self.store.execute(
                    "DELETE FROM stats_outbox WHERE id = ANY(%s)", ([r[0] for r in rows],)
                )
        except _NotWritten:
            return False
        except psycopg.Error as exc:  # no store yet, or it went: try again next time
            log.debug("store not ready: %s", exc)
            if self.store is not None:
                with contextlib.suppress(psycopg.Error):
                    self.store.close()
            self.store = None
            return False
        self.written += len(rows)
        return len(rows) == BATCH


class _NotWritten(Exception):
    """The statistics database refused a batch: its rows stay in the outbox."""


def main() -> None:
    """Run the writer as afserver's `stats` process."""
    from config import load_config
    from config.logs import setup_logging, verbosity_from_env

    cfg = load_config()
    setup_logging(verbosity_from_env(), "stats")
    if not stats_enabled(cfg):
        log.info("statistics are off (af_db_conninfo = off): nothing to write")
        sys.exit(0)
    writer = make_writer(cfg)
    signal.signal(signal.SIGTERM, writer.stop)
    signal.signal(signal.SIGINT, writer.stop)
    writer.run()


def make_writer(cfg: Any, thread: bool = False) -> StatsWriter:
    """The writer for this configuration; `thread`: it runs as a thread of the web process
    (stats.writer_in_web), whose loop beats the watchdog (while the writer is healthy)."""
    from workers.scheduler.store import FILE_NAME

    store_db = str(cfg.get("af_store_db", "") or "").strip()
    if store_db:  # every afserver's scheduler writes that outbox: no one bell to ring
        writer: StatsWriter = PgOutboxWriter(store_db, open_backend(cfg))
    else:
        bell_path = doorbell.path_from_env()
        bell = doorbell.Doorbell(bell_path) if bell_path is not None else None
        writer = StatsWriter(Path(cfg["af_store_folder"]) / FILE_NAME, open_backend(cfg), bell)
        # its loop shows it is alive between rings, well within the watchdog's time
        watched = float(cfg["af_watchdog_sec"])
        writer.rest_sec = min(RING_WAIT_MAX_SEC, watched / 3) if watched > 0 else RING_WAIT_MAX_SEC
    if thread:
        writer.alive = watchdog.Beat(None)
    return writer


if __name__ == "__main__":
    main()
