"""A full or unwritable store: which failures mean it, and the DEGRADED state they put the
scheduler in.

A disk that fills up (or turns read-only, or loses its permissions) is the one store
failure that mends itself: someone frees space and the same commit goes through. So the
scheduler does not exit on it (a restarted one would only fail again, and lose what it held
in memory); it stays up, refuses what would need a commit to be acknowledged, keeps what it
could not commit in memory and retries the same commit until it goes through. Pure
decisions here, clocks passed in; committer.py does the I/O.
"""

from __future__ import annotations

import errno
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

RETRY_SEC = 1.0  # a degraded store is tried again this often (one commit and one probe)
REMIND_SEC = 60.0  # a degraded store is logged on entry, then once a minute

# SQLite's primary result codes (the low byte of an extended code)
SQLITE_PERM = 3
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_UNWRITABLE_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}
_UNWRITABLE_CODES = {SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN}


@dataclass(frozen=True, slots=True)
class Fault:
    """Why the store cannot be written: `full` (space, quota) or `unwritable` (read-only,
    permissions, I/O); `detail` in the words of the system ("no space left on device")."""

    kind: str
    detail: str


def store_fault(exc: BaseException) -> Fault | None:
    """The fault an exception from a commit or an output write means, or None when it is
    something else (a bug, a corrupt file), which degrading would only hide."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None:
            return None
        primary = code & 0xFF
        if primary == SQLITE_FULL:
            return Fault("full", "no space left on device")
        if primary in _UNWRITABLE_CODES:
            return Fault("unwritable", str(exc).lower() or "not writable")
        return None
    if isinstance(exc, OSError) and exc.errno is not None:
        detail = (exc.strerror or str(exc)).lower()
        if exc.errno in _FULL_ERRNOS:
            return Fault("full", detail)
        if exc.errno in _UNWRITABLE_ERRNOS:
            return Fault("unwritable", detail)
    return None


class StoreHealth:
    """OK or DEGRADED, with the fault, when to retry and when to remind.

    Each method that changes the state returns the line to log, or None: the caller logs it
    (once on entry, a reminder every `remind_sec`, once on recovery)."""

    def __init__(
        self, folder: str, retry_sec: float = RETRY_SEC, remind_sec: float = REMIND_SEC
    ) -> None:
        self.folder = folder
        self.retry_sec = retry_sec
        self.remind_sec = remind_sec
        self.fault: Fault | None = None
        self.where = ""  # what failed first: "commit" or "task output"
        self.since = 0.0
        self.next_retry = 0.0
        self.next_reminder = 0.0
        self.refused: Counter[str] = Counter()  # writes refused since degraded, by where
        self.episodes = 0  # times it went degraded since the start
        self.role: Callable[[], dict[str, object]] | None = None  # active since, standbys

    def _role(self) -> dict[str, object]:
        return {"server": self.role()} if self.role is not None else {}

    @property
    def degraded(self) -> bool:
        return self.fault is not None

    def failed(self, fault: Fault, where: str, now: float) -> str | None:
        """A write failed at `now`: enter DEGRADED (a line to log) or count the failure."""
        if self.fault is None:  # entering
            self.since = now
            self.refused.clear()
            self.episodes += 1
        self.refused[where] += 1
        if now >= self.next_retry:  # a retry failed; writes failing between do not delay one
            self.next_retry = now + self.retry_sec
        if self.fault is not None and self.fault.kind == fault.kind:
            return None
        self.fault, self.where = fault, where
        self.next_reminder = now + self.remind_sec
        return (
            f"{self.refusal()} (on {where}); degraded: submissions and changes are refused, "
            "renders and running tasks go on, results wait in memory and at the renders "
            f"until a commit goes through (tried every {self.retry_sec:g} s)"
        )

    def due(self, now: float) -> bool:
        """Whether a write may be tried: always when OK, every `retry_sec` when degraded."""
        return self.fault is None or now >= self.next_retry

    def reminder(self, now: float) -> str | None:
        if self.fault is None or now < self.next_reminder:
            return None
        self.next_reminder = now + self.remind_sec
        return (
            f"{self.refusal()}: still degraded after {now - self.since:.0f} s, "
            f"{self.refused.total()} writes refused"
        )

    def recovered(self, now: float) -> str | None:
        """A commit (and the output probe) went through: leave DEGRADED."""
        if self.fault is None:
            return None
        line = (
            f"store {self.folder} writable again after {now - self.since:.0f} s "
            f"({self.refused.total()} writes refused meanwhile): leaving degraded"
        )
        self.fault, self.where = None, ""
        return line

    def refusal(self) -> str | None:
        """The error a refused request gets while degraded; None when OK."""
        fault = self.fault
        if fault is None:
            return None
        if fault.kind == "full":
            return f"store full: {fault.detail}; free space in {self.folder}"
        return f"store unwritable: {fault.detail}; make {self.folder} writable"

    def to_json(self, now: float) -> dict[str, object]:
        """For the scheduler's stat reply (afcmd stat, the web's farm API)."""
        if self.fault is None:
            return {
                "state": "ok",
                "folder": self.folder,
                "degraded_times": self.episodes,
                **self._role(),
            }
        return {
            "state": "degraded",
            "folder": self.folder,
            "fault": self.fault.kind,
            "error": self.refusal(),
            "on": self.where,
            "seconds": round(now - self.since, 1),
            "writes_refused": dict(self.refused),
            "degraded_times": self.episodes,
            **self._role(),
        }
