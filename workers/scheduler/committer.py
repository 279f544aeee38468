"""The scheduler's commits, and what a full or unwritable store makes of them.

A commit that fails for want of room (or rights) leaves the changes in memory (sync.py
clears its marks only after a commit), puts the scheduler in DEGRADED (storehealth.py) and
is tried again, the same changes as they stand then, every few seconds; the loop holds back
whatever would reveal them meanwhile. Any other store error is not ours to hide: it ends
the scheduler, as before.
"""

from __future__ import annotations

import logging
import time

from workers.scheduler.farm import Farm
from workers.scheduler.output import OutputStore
from workers.scheduler.storehealth import Fault, StoreHealth, store_fault
from workers.scheduler.sync import FarmStore

log = logging.getLogger("scheduler")


class Committer:
    def __init__(
        self, sync: FarmStore, outputs: OutputStore, health: StoreHealth, host: str
    ) -> None:
        self.sync = sync
        self.farm: Farm = sync.farm
        self.outputs = outputs
        self.health = health
        self.host = host  # names the server in the logs table

    def failed(
        self,
        exc: BaseException,
        where: str,
        mono: float | None = None,
        fallback: Fault | None = None,
    ) -> bool:
        """A write failed: a full or unwritable store degrades the scheduler (True), said
        once; anything else is not a store fault (False)."""
        fault = store_fault(exc) or fallback
        if fault is None:
            return False
        line = self.health.failed(fault, where, time.monotonic() if mono is None else mono)
        if line is not None:
            log.error("%s", line)
            self.farm.log_row(time.time(), self.host, "server", self.host, line)
        return True

    def commit(self, mono: float) -> bool:
        """Commit what changed; False while the store cannot take it (degraded). A degraded
        store is left once a commit and an output probe go through."""
        health = self.health
        if not health.due(mono):
            if (line := health.reminder(mono)) is not None:
                log.error("%s", line)
            return False
        began, commits = time.perf_counter(), self.sync.commits
        try:
            self.sync.flush()
        except self.sync.store.ERRORS as exc:
            if not self.failed(exc, "commit", mono):
                raise
            return False
        if self.sync.commits != commits:  # something was written
            self.farm.timings.commit.observe(time.perf_counter() - began)
        if health.degraded:
            try:
                self.outputs.probe()  # task output must have room again too
            except OSError as exc:
                self.failed(exc, "output probe", mono, fallback=health.fault)
                return False
            line = health.recovered(mono)
            noted = self.outputs.mend()
            log.warning("%s; %d truncated outputs noted", line, noted)
            self.farm.log_row(time.time(), self.host, "server", self.host, str(line))
        return True
