"""Periodic checks through APScheduler 3, posted into the scheduler loop.

APScheduler runs its jobs on its own threads; those threads never touch farm state. Each
job only sends the check's name over an inproc PUSH socket (one per thread, since ZeroMQ
sockets are not thread-safe); the loop receives it on a PULL socket and runs the check.
"""

from __future__ import annotations

import logging
import threading

import zmq
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger("periodic")

ENDPOINT = "inproc://scheduler-periodic"


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

    def every(self, seconds: float, check: str) -> None:
        """Post `check` every `seconds` from now on (again for a check: its new pace)."""
        self.scheduler.add_job(
            self._post,
            "interval",
            seconds=seconds,
            args=[check],
            id=check,
            replace_existing=True,
        )

    def start(self) -> None:
        self.scheduler.start()

    def _post(self, check: str) -> None:
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
            push.send_string(check, zmq.NOBLOCK)
        except zmq.Again:
            log.debug("loop is busy; %s skipped this round", check)

    def receive(self) -> list[str]:
        """Checks posted since the last call (duplicates folded)."""
        checks: list[str] = []
        while True:
            try:
                check = self.pull.recv_string(zmq.NOBLOCK)
            except zmq.Again:
                return checks
            if check not in checks:
                checks.append(check)

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)
        with self._lock:
            for push in self._pushes:
                push.close(0)
        self.pull.close(0)
