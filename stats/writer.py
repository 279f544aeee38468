"""The statistics writer: a thread that moves rows from the store's `stats_outbox` into the
statistics database in batches, off the scheduler loop.

The scheduler commits each row with the change it records, so a row waits durably until it
is written: while the database is down nothing is lost, and the outage is logged once.
The thread has its own SQLite connection; it never touches farm objects.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from stats.backends import Backend, StatsError

log = logging.getLogger("stats")

BATCH = 1000
RETRY_SEC = 5.0


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
                self.wake.wait(RETRY_SEC)
                self.wake.clear()
                while not self.stopping and self.write_batch(db):
                    pass
        finally:
            db.close()

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
            for table, batch in by_table.items():
                self.backend.insert(table, batch)
        except StatsError as exc:
            if self.outage is None:
                log.error("statistics database unreachable (%s): rows wait in the store", exc)
            self.outage = str(exc)
            return False
        if self.outage is not None:
            log.warning("statistics database back: writing the rows that waited")
            self.outage = None
        with db:
            db.executemany("DELETE FROM stats_outbox WHERE id=?", [(r[0],) for r in rows])
        self.written += len(rows)
        return len(rows) == BATCH
