"""Periodic checks through APScheduler 3, posted into the scheduler loop.

APScheduler runs its jobs on its own threads; those threads never touch farm state. Each
job only sends the check's name over an inproc PUSH socket (one per thread, since ZeroMQ
sockets are not thread-safe); the loop receives it on a PULL socket and runs the check.

On a starved machine a check's next time may come while its last post still waits for
the pool's thread: APScheduler then skips it (or runs it late) and warns about it each
time, a line a second or more per check. A skip is harmless (the loop folds repeated
checks), so those warnings are said once, then counted (`broker.rarelog`): which checks
and why, at most two lines a minute.
"""

from __future__ import annotations

import logging
import threading

import zmq
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from broker.rarelog import RareLog

log = logging.getLogger("periodic")

ENDPOINT = "inproc://scheduler-periodic"
SKIPS_SAID_EVERY = 60.0  # seconds: the first skip in full, then one count per period
SKIPPED = "periodic checks skipped"  # the kind of line, in the first and the summary
# APScheduler's own warnings for the two cases, replaced by the counted lines
_APSCHEDULER_LOGGERS = ("apscheduler.scheduler", "apscheduler.executors.default")
_APSCHEDULER_SKIPS = ("Execution of job ", "Run time of job ")


class _QuietSkips(logging.Filter):
    """Drops APScheduler's per-skip warnings; `Periodic` counts the skips itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg if isinstance(record.msg, str) else ""
        skip = msg.startswith(_APSCHEDULER_SKIPS) and ("skipped" in msg or "missed" in msg)
        return not skip


_QUIET = _QuietSkips()


def skip_reason(event: JobEvent) -> str:
    """Why a check did not run on time, in words for the log."""
    if event.code == EVENT_JOB_MAX_INSTANCES:
        return (
            f"check {event.job_id} skipped: its last run still waited for the thread "
            "(this process is short of CPU); the next run catches up"
        )
    return f"check {event.job_id} ran late, past its misfire grace: this process is short of CPU"


class Periodic:
    def __init__(self, ctx: zmq.Context) -> None:
        self.ctx = ctx
        self.pull = ctx.socket(zmq.PULL)
        self.pull.setsockopt(zmq.LINGER, 0)
        self.pull.bind(ENDPOINT)
        self._local = threading.local()
        self._pushes: list[zmq.Socket] = []
        self._lock = threading.Lock()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 5},
            daemon=True,
        )
        self.skips = RareLog(log, every=SKIPS_SAID_EVERY)
        self.skipped = 0  # checks skipped or run late since the start
        self._paces: dict[str, float] = {}  # each check's period, s
        self._jobs: dict[float, str] = {}  # each period's timer: the id of its job
        for name in _APSCHEDULER_LOGGERS:
            logging.getLogger(name).addFilter(_QUIET)  # the same filter once, however many
        self.scheduler.add_listener(self._skip, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)

    def _skip(self, event: JobEvent) -> None:
        """On APScheduler's thread: a check missed its time. Said once, then counted."""
        with self._lock:
            self.skipped += 1
            self.skips.say(SKIPPED, skip_reason(event))

    def flush(self, everything: bool = False) -> None:
        """The loop's housekeeping: sum up skips counted in a period that ended (all of
        them when stopping)."""
        with self._lock:
            self.skips.flush(everything)

    def every(self, seconds: float, check: str) -> None:
        """Post `check` every `seconds` from now on (again for a check: its new pace).

        Checks of one pace share one timer and one message: three checks a second wake
        APScheduler's thread and the loop once a second, not three times."""
        before = self._paces.get(check)
        self._paces[check] = seconds
        for pace in {before, seconds} - {None}:
            old = self._jobs.pop(pace, None)
            if old is not None:
                self.scheduler.remove_job(old)
            checks = sorted(c for c, s in self._paces.items() if s == pace)
            if checks:  # the id names them all: a skip is said as "check refresh, ... skipped"
                self._jobs[pace] = ", ".join(checks)
                self.scheduler.add_job(
                    self._post, "interval", seconds=pace, args=[checks], id=self._jobs[pace]
                )

    def pace(self, check: str) -> float | None:
        """How often `check` is posted, s (None: never)."""
        return self._paces.get(check)

    def start(self) -> None:
        self.scheduler.start()

    def _post(self, checks: list[str]) -> None:
        push = getattr(self._local, "push", None)
        if push is None:
            push = self.ctx.socket(zmq.PUSH)
            push.setsockopt(zmq.LINGER, 0)
            push.setsockopt(zmq.SNDHWM, 16)
            push.connect(ENDPOINT)
            self._local.push = push
            with self._lock:
                self._pushes.append(push)
        try:
            push.send_multipart([check.encode() for check in checks], zmq.NOBLOCK)
        except zmq.Again:
            log.debug("loop is busy; %s skipped this round", ", ".join(checks))

    def receive(self) -> list[str]:
        """Checks posted since the last call (duplicates folded)."""
        checks: list[str] = []
        while True:
            try:
                posted = self.pull.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return checks
            for check in posted:
                name = check.decode()
                if name not in checks:
                    checks.append(name)

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)
        self.flush(everything=True)
        with self._lock:
            for push in self._pushes:
                push.close(0)
        self.pull.close(0)
