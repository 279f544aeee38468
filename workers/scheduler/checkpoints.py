"""The store's write-ahead log copied into the database file on a thread, not in the loop.

In WAL mode a commit only appends to the log. By default the committing connection then
copies the log into the database file whenever the log has passed 1,000 pages (4 MB),
syncing both files. On a busy farm (a thousand starts and a thousand finals a second) that
came every 0.3-0.5 s and took 60-70 ms of the scheduler's loop each time: every heartbeat
waited for it (issue 8). Here a thread with its own connection does the copying:

- PASSIVE checkpoints copy what the log holds while the loop goes on committing.
- The log file is begun again only when a writer finds all of it copied, which a loop that
  commits every few milliseconds never lets a slower checkpoint see. So once the log has
  passed ``restart_pages``, a RESTART copies the little written since the last pass and
  holds the loop's commits for that tail only (a few ms); the next commit begins the log
  from its start. The file keeps its size (about ``restart_pages``) and is written over:
  cutting it back would cost the loop's next commit a truncate.
- A RESTART holds the loop's commits while it waits for readers to leave the log (the
  stats writer, an administrator's sqlite3 shell), so it waits BUSY_MS at most: then it
  gives up until the next pass, and the log grows meanwhile, as it would with SQLite's own
  checkpoints while a reader stays.
- A pass comes only after a commit (``wake``, called by the store): a farm at rest commits
  nothing, and its thread sleeps instead of asking SQLite twice a second that nothing is
  there to copy. The first pass, at start, copies what an earlier run left.
- The loop's own connection keeps an automatic checkpoint, far above that (``BACKSTOP``),
  for a thread that cannot keep up or has died: a long pause, but a bounded log.

SQLite releases the GIL while it copies and syncs, so the loop runs meanwhile.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from broker.rarelog import RareLog

log = logging.getLogger("store")

INTERVAL_SEC = 0.5
RESTART_PAGES = 16_384  # 64 MB of log at 4 KB pages
BACKSTOP_PAGES = 65_536  # 256 MB: the loop copies the log itself only past this
BUSY_MS = 20  # how long a RESTART waits for the loop's commit and for readers


def configure_writer(db: sqlite3.Connection) -> None:
    """The loop's connection: no checkpoints of its own below the backstop."""
    db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")


class Checkpointer:
    """A daemon thread that checkpoints the store's log after commits, at most once every
    ``interval`` seconds."""

    def __init__(
        self,
        path: Path,
        interval: float = INTERVAL_SEC,
        restart_pages: int = RESTART_PAGES,
    ) -> None:
        self.path = path
        self.interval = interval
        self.restart_pages = restart_pages
        self.stopped = threading.Event()
        self.committed = threading.Event()  # the log has grown since the last pass
        self.committed.set()
        self.passes = 0  # checkpoints done (PASSIVE and RESTART)
        self.restarts = 0
        self.busy = 0  # RESTARTs that gave up: a commit or a reader held on
        self.failures = 0
        self.rare = RareLog(log, 60.0)
        self.thread = threading.Thread(target=self._run, name="checkpoints", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        """A commit went into the log: the next pass is worth it (called after each one)."""
        self.committed.set()

    def stop(self) -> None:
        self.stopped.set()
        self.committed.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            while self.committed.wait() and not self.stopped.is_set():
                self.committed.clear()
                try:
                    if db is None:
                        # mode=rw: the scheduler makes the store; this thread never does
                        db = sqlite3.connect(
                            f"{self.path.as_uri()}?mode=rw", uri=True, isolation_level=None
                        )
                        db.execute(f"PRAGMA busy_timeout={BUSY_MS}")
                    self.checkpoint(db)
                except sqlite3.Error as exc:  # the loop's backstop still bounds the log
                    self.failures += 1  # a full disk fails every pass: said once a minute
                    self.rare.say(
                        "failed", f"checkpoint of {self.path} failed: {exc}; trying again"
                    )
                    if db is not None:
                        db.close()
                        db = None
                    self.committed.set()  # the next pass tries again
                if self.stopped.wait(self.interval):
                    break
        finally:
            if db is not None:
                db.close()

    def checkpoint(self, db: sqlite3.Connection) -> None:
        """Copy the log; begin it again once it has grown past restart_pages."""
        busy, pages, _copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.passes += 1
        if busy or pages < self.restart_pages:
            return
        # the log is copied up to where this pass began; copy what came meanwhile, a short
        # pass, so that the RESTART has only a few pages left to copy while it holds commits
        db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        busy, pages, copied = db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        self.passes += 2
        if busy:
            self.busy += 1
        else:
            self.restarts += 1
        log.debug("log of %d pages: copied %d, begun again: %s", pages, copied, not busy)
