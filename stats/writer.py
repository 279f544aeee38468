"""The statistics writer: a thread that moves rows from the store's `stats_outbox` into the
statistics database in batches, off the scheduler loop.

The scheduler commits each row with the change it records, so a row waits durably until it
is written: while the database is down nothing is lost, and the outage is logged once.
The thread has its own SQLite connection; it never touches farm objects.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from stats.backends import Backend, StatsError

log = logging.getLogger("stats")

BATCH = 1000
RETRY_SEC = 5.0
GATHER_SEC = 0.2  # after a wake, let rows gather: fewer, larger batches


class StatsWriter(threading.Thread):
    def __init__(self, store_path: str | Path, backend: Backend) -> None:
        super().__init__(name="stats-writer", daemon=True)
        self.store_path = Path(store_path)
        self.backend = backend
        self.wake = threading.Event()
        self.stopping = False
        self.written = 0
        self.outage: str | None = None
        self.tables_ready = False
        self.conn: Any = None  # the statistics database, kept open between batches

    def notify(self) -> None:
        self.wake.set()

    def stop(self, timeout: float = 2.0) -> None:
        self.stopping = True
        self.wake.set()
        self.join(timeout)

    def run(self) -> None:
        db = sqlite3.connect(self.store_path, timeout=10)
        try:
            while not self.stopping:
                if self.wake.wait(RETRY_SEC) and not self.stopping:
                    time.sleep(GATHER_SEC)  # a pause of this thread only, not of a test
                self.wake.clear()
                while not self.stopping and self.write_batch(db):
                    pass
        finally:
            db.close()
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None

    def write_batch(self, db: sqlite3.Connection) -> bool:
        """One batch; True when a full batch went (there may be more)."""
        rows = db.execute(
            "SELECT id, tbl, row FROM stats_outbox ORDER BY id LIMIT ?", (BATCH,)
        ).fetchall()
        if not rows:
            return False
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
        with db:  # ids are given in commit order, so the batch is all rows up to its last
            db.execute("DELETE FROM stats_outbox WHERE id <= ?", (rows[-1][0],))
        self.written += len(rows)
        return len(rows) == BATCH
