"""The scheduler process: one loop over broker requests and periodic checks, one store."""

from __future__ import annotations

import logging
import signal
import sys
import time
from typing import Any

import zmq

from broker import protocol as P
from config import load_config
from config.logs import setup_logging, verbosity_from_env
from workers.base import WorkerConnection, WorkerLoop
from workers.scheduler.farm import Farm
from workers.scheduler.handlers import SchedulerHandler
from workers.scheduler.periodic import Periodic
from workers.scheduler.pools import Builtins
from workers.scheduler.store import Store, StoreError

log = logging.getLogger("scheduler")

CHECK_RENDERS_SEC = 1.0
EXIT_STORE_ERROR = 3  # afserver does not restart a scheduler that cannot open its store


def broker_endpoint(cfg: Any) -> str:
    """Where a worker on the server host reaches the broker."""
    address = cfg["af_server_bind_address"]
    host = address if address and address not in ("*", "0.0.0.0", "::") else "127.0.0.1"
    return P.endpoint(host, cfg["af_serverport"])


def builtins_from_config(cfg: Any) -> Builtins:
    return Builtins(
        heartbeat_sec=cfg["af_render_heartbeat_sec"],
        resources_update_period=cfg["af_render_up_resources_period"],
        zombie_time=cfg["af_render_zombietime"],
        exit_no_task_time=cfg["af_render_exit_no_task_time"],
    )


class Scheduler:
    """Wires the farm to its edges: the broker connection, the store and the checks."""

    def __init__(self, cfg: Any, ctx: zmq.Context) -> None:
        self.store = Store(cfg["af_store_folder"])
        now = time.time()
        self.farm = Farm(builtins_from_config(cfg), now)
        started = time.monotonic()
        self.farm.restore(self.store.load("renders"), self.store.load("users"))
        log.info(
            "restored %d renders and %d users from %s in %.3f s",
            len(self.farm.renders),
            len(self.farm.users),
            self.store.path,
            time.monotonic() - started,
        )
        self.conn = WorkerConnection(
            ctx,
            broker_endpoint(cfg),
            P.SCHEDULER,
            heartbeat_sec=cfg["af_worker_heartbeat_sec"],
            liveness=cfg["af_worker_liveness"],
            message_size_max=cfg["af_message_size_max"],
        )
        self.handler = SchedulerHandler(self.conn, self.farm)
        self.periodic = Periodic(ctx)
        self.periodic.every(CHECK_RENDERS_SEC, "check_renders")
        self.loop = WorkerLoop(self.conn, self.handler, tick=self.tick)
        self.loop.add_socket(self.periodic.pull, self.on_periodic)

    def on_periodic(self, _monotonic: float) -> None:
        now = time.time()
        for check in self.periodic.receive():
            if check == "check_renders":
                for render in self.farm.check_zombies(now):
                    log.warning("render %s (id %d) is a zombie: offline", render.name, render.id)

    def tick(self, _monotonic: float) -> float:
        """After every loop pass: commit what changed, as one transaction."""
        self.flush()
        return float("inf")

    def flush(self) -> None:
        farm = self.farm
        if farm.dirty_renders:
            self.store.save("renders", [farm.renders[i].settings() for i in farm.dirty_renders])
            farm.dirty_renders.clear()
        if farm.dirty_users:
            self.store.save("users", [farm.users[n].to_json() for n in farm.dirty_users])
            farm.dirty_users.clear()

    def run(self) -> None:
        self.periodic.start()
        try:
            self.loop.run()
        finally:
            self.flush()
            self.periodic.shutdown()
            self.store.close()


def main() -> None:
    cfg = load_config()
    setup_logging(verbosity_from_env(), "scheduler")
    ctx = zmq.Context()
    try:
        scheduler = Scheduler(cfg, ctx)
    except StoreError as exc:
        log.critical("%s", exc)
        sys.exit(EXIT_STORE_ERROR)
    signal.signal(signal.SIGTERM, scheduler.loop.stop)
    signal.signal(signal.SIGINT, scheduler.loop.stop)
    scheduler.run()


if __name__ == "__main__":
    main()
