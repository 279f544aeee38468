"""What the web process refuses, told once and then counted.

A refusal of who may do what (a bad token, a missing role, a cross-origin request) goes to
the statistics `logs` table, as the scheduler's refusals do; any refusal goes to the web's
log. A peer that repeats one (a script in a loop, a fuzzer, an attacker) would flood both,
so the first of a kind from a peer is told in full and the rest are counted: one summary
per peer and kind at most every SUMMARY_SEC. Rows are written by the feed's own thread in
batches; while the statistics database is down they wait, up to PENDING_MAX.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from stats.rows import log_row

log = logging.getLogger("web.refusals")

SUMMARY_SEC = 5.0
PEERS_MAX = 1024  # kinds of refusal by peer kept in one window; more are counted together
PENDING_MAX = 10_000  # rows waiting for the statistics database

Sink = Callable[[list[dict[str, Any]]], None]


def printable(text: str) -> str:
    """A client's text for one log line: a path may hold a decoded CR LF."""
    return text if text.isprintable() else "".join(c if c.isprintable() else "?" for c in text)


class RefusalLog:
    def __init__(self, sink: Sink | None = None, clock: Callable[[], float] = time.time) -> None:
        self.sink = sink
        self.clock = clock
        self._lock = threading.Lock()
        self._window: dict[
            tuple[str, str], list[Any]
        ] = {}  # (peer, kind) -> [count, subject, obj, table]
        self._rows: list[dict[str, Any]] = []
        self._dropped = 0
        self._outage = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.noted = 0  # every refusal, counted or told

    def note(
        self, peer: str, kind: str, text: str, obj: str = "", subject: str = "", table: bool = True
    ) -> None:
        """A refusal of `kind` (a short word: token, role, origin, 400...) to `peer`."""
        subject, obj, text = printable(subject or f"?@{peer}"), printable(obj), printable(text)
        with self._lock:
            self.noted += 1
            key = (peer, kind) if len(self._window) < PEERS_MAX else ("*", kind)
            seen = self._window.get(key)
            if seen is not None:
                seen[0] += 1
                seen[2] = obj
                return
            self._window[key] = [0, subject, obj, table]
            log.warning("refused %s %s: %s", subject, obj, text)
            if table:
                self._row(subject, obj, f"refused: {text}")

    def _row(self, subject: str, obj: str, info: str) -> None:
        if len(self._rows) >= PENDING_MAX:
            self._rows.pop(0)
            self._dropped += 1
        self._rows.append(log_row(self.clock(), subject, "web", obj, info))

    def summarise(self) -> None:
        """The counts of the window that ends now; the next refusal of a kind is told again."""
        with self._lock:
            window, self._window = self._window, {}
            for (peer, kind), (count, subject, obj, table) in window.items():
                if count:
                    text = f"{count} more refusals ({kind}) from {peer} in {SUMMARY_SEC:g} s"
                    log.warning("%s, the last for %s", text, obj)
                    if table:
                        self._row(subject, obj, text)

    def flush(self) -> None:
        """The waiting rows into the statistics database, all or none."""
        with self._lock:
            rows, self._rows = self._rows, []
            dropped, self._dropped = self._dropped, 0
        if dropped:
            log.warning("%d refusal rows dropped while the statistics database was down", dropped)
        if not rows or self.sink is None:
            return
        try:
            self.sink(rows)
        except Exception as exc:  # the database's own error: keep the rows for the next try
            if not self._outage:
                log.warning("refusals not written to the statistics database yet: %s", exc)
            self._outage = True
            with self._lock:
                self._rows[:0] = rows[: PENDING_MAX - len(self._rows)]
            return
        self._outage = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="refusals", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self.summarise()
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(SUMMARY_SEC):
            self.summarise()
            self.flush()


NOTED = "refusal_noted"  # in a request's state: its refusal is noted, the guard adds none


def note_refusal(request: Any, kind: str, text: str, subject: str = "") -> None:
    """Note a refusal answered by a route (`request`: a Starlette request of our app)."""
    setattr(request.state, NOTED, True)
    refusals = getattr(request.app.state, "refusals", None)
    if refusals is not None:
        peer = request.client.host if request.client else "?"
        what = f"{request.method} {request.url.path}"[:200]
        refusals.note(peer, kind, text, what, subject)


# --- what a refusal means for a person on the monitor page ---------------------------------
# The API's texts name what a script sends (a header, afcmd's --admin); the monitor shows
# them with this line, which names the page's own fields instead.

PAGE_TOKEN = (
    "On the page: paste your token in the token field of the header "
    "(afcmd token YOUR_NAME prints it)."
)
PAGE_NOT_ADMIN = (
    "On the page: untick 'admin' in the header, or ask an admin to add your name to af_admins."
)
PAGE_ADMIN = "On the page: tick 'admin' in the header (your name must be in af_admins)."
PAGE_OTHERS = (
    "On the page: these are other users' jobs; check the user name in the header is yours, "
    "or tick 'admin' if you are one."
)
PAGE_UNNAMED = "On the page: type your user name in the header's user field."


def for_page(status: int, text: str) -> str:
    """The line a refusal gets on the monitor page, or "" when the text says it all."""
    if status == 401:
        return PAGE_TOKEN
    if status != 403:
        return ""
    if "is not an admin" in text:
        return PAGE_NOT_ADMIN
    if "an unnamed user" in text:
        return PAGE_UNNAMED
    if "other users' jobs" in text:
        return PAGE_OTHERS
    if "admin role" in text:
        return PAGE_ADMIN
    return ""
