"""A standby scheduler: on a PostgreSQL store that another afserver holds, it waits for the
store's lock, answering every request meanwhile with a clear refusal that names the active
server, so that renders and clients that list several servers move on to it at once.

Once the lock is ours (the active's session ended: it died, froze past its lease, or its
connection to PostgreSQL went), the scheduler proper restores the farm from the store.
A store that cannot be reached is waited for the same way, so that a PostgreSQL restart
does not stop afserver.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import psycopg
import zmq

from broker import protocol as P
from broker.workerlink import WorkerLink
from workers.base import WorkerConnection, WorkerLoop
from workers.scheduler.pgstore import WAIT_POLL_SEC, PgStore
from workers.scheduler.store import ACTIVE_KEY, StoreError

log = logging.getLogger("scheduler")


def refusal(active: dict[str, Any] | None, store_error: str = "") -> str:
    """What a standby answers: who is active, as far as the store says."""
    if store_error:
        return f"standby: the farm's store is unreachable ({store_error}); try another server"
    if not active:
        return "standby: another afserver holds the farm's store; try another server"
    return (
        f"standby, active is {active.get('server', '?')} "
        f"(since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(active.get('since', 0)))})"
    )


class StandbyHandler:
    """Every request refused with ErrorCode.STANDBY; nothing else is done for it."""

    def __init__(self, conn: WorkerConnection) -> None:
        self.conn = conn
        self.text = refusal(None)
        self.refused = 0

    def handle(self, client: bytes, header: Any, body: Any, proven: str | None = None) -> None:
        self.refused += 1
        self.conn.error(client, header.request_id, P.ErrorCode.STANDBY, self.text)


class Standby:
    """Waits for the store's lock; `run` returns the store, ours, or None if stopped."""

    def __init__(
        self, conninfo: str, name: str, ctx: zmq.Context, link: WorkerLink, cfg: Any
    ) -> None:
        self.conninfo = conninfo
        self.name = name
        self.store: PgStore | None = None
        self.acquired = False
        self.next_try = 0.0
        self.said = ""
        self.conn = WorkerConnection(
            ctx,
            link,
            P.SCHEDULER,
            heartbeat_sec=cfg["af_worker_heartbeat_sec"],
            liveness=cfg["af_worker_liveness"],
            message_size_max=cfg["af_message_size_max"],
        )
        self.handler = StandbyHandler(self.conn)
        self.loop = WorkerLoop(self.conn, self.handler, tick=self.tick)

    def attempt(self) -> bool:
        """One try for the lock; True once it is ours."""
        try:
            if self.store is None:
                self.store = PgStore(self.conninfo, name=self.name, role="standby")
            if self.store.try_acquire():
                return True
            self.handler.text = refusal(self._active())
        except (StoreError, psycopg.OperationalError) as exc:
            if isinstance(exc, StoreError) and self.store is not None and self.store.leader:
                raise  # the lock is ours but the schema is not (newer): not ours to mend
            if self.store is not None:
                self.store.close()
                self.store = None
            self.handler.text = refusal(None, str(exc).strip().splitlines()[0])
        if self.handler.text != self.said:
            log.warning("%s", self.handler.text)
            self.said = self.handler.text
        return False

    def _active(self) -> dict[str, Any] | None:
        assert self.store is not None
        try:
            text = self.store.meta(ACTIVE_KEY)
        except psycopg.errors.UndefinedTable:  # the active has not made the tables yet
            return None
        return json.loads(text) if text else None

    def tick(self, mono: float) -> float:
        if mono >= self.next_try:
            if self.attempt():
                self.acquired = True
                self.loop.stop()
            self.next_try = mono + WAIT_POLL_SEC
        return self.next_try

    def run(self) -> PgStore | None:
        if self.attempt():  # the lock is free: no broker connection as a standby at all
            return self.store
        log.info("standby: waiting for the store's lock (%s)", self.handler.text)
        self.loop.run()
        if not self.acquired:  # stopped (SIGTERM) while waiting
            if self.store is not None:
                self.store.close()
            return None
        log.info("the store's lock is ours after %d refused requests", self.handler.refused)
        return self.store
