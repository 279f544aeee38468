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
from workers.scheduler.output import OutputStore
from workers.scheduler.periodic import Periodic
from workers.scheduler.pools import Builtins
from workers.scheduler.solver import Solver
from workers.scheduler.store import Store, StoreError

log = logging.getLogger("scheduler")

CHECK_RENDERS_SEC = 1.0
REFRESH_SEC = 1.0  # time waits, run-time limits, forgiveness; solving itself is event driven
EXIT_STORE_ERROR = 3  # afserver does not restart a scheduler that cannot open its store


def broker_endpoint(cfg: Any) -> str:
    """Where a worker on the server host reaches the broker."""
    address = cfg["af_server_bind_address"]
    host = address if address and address not in ("*", "0.0.0.0", "::") else "127.0.0.1"
    return P.endpoint(host, cfg["af_serverport"])


def user_defaults(cfg: Any) -> dict[str, Any]:
    return {
        "errors_retries": cfg["af_task_error_retries"],
        "errors_avoid_host": cfg["af_errors_avoid_host"],
        "errors_task_same_host": cfg["af_task_errors_same_host"],
        "errors_forgive_time": cfg["af_errors_forgivetime"],
        "max_running_tasks_per_host": cfg["af_max_run_tasks_per_host"],
        "max_running_tasks": cfg["af_max_running_tasks"],
        "jobs_life_time": cfg["af_jobs_life_time"],
    }


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
        self.farm = Farm(builtins_from_config(cfg), now, user_defaults(cfg))
        self.farm.progress_timeout = cfg["af_task_progress_change_timeout"]
        self.outputs = OutputStore(cfg["af_store_folder"], cfg["af_render_task_read_buffer_size"])
        self.solver = Solver(self.farm)
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
        self.handler = SchedulerHandler(self.conn, self.farm, self.outputs)
        self.periodic = Periodic(ctx)
        self.periodic.every(CHECK_RENDERS_SEC, "check_renders")
        self.periodic.every(REFRESH_SEC, "refresh")
        self.loop = WorkerLoop(self.conn, self.handler, tick=self.tick)
        self.loop.add_socket(self.periodic.pull, self.on_periodic)

    def on_periodic(self, _monotonic: float) -> None:
        now = time.time()
        for check in self.periodic.receive():
            if check == "check_renders":
                for render in self.farm.check_zombies(now):
                    log.warning("render %s (id %d) is a zombie: offline", render.name, render.id)
            elif check == "refresh":
                self.farm.refresh(now)

    def tick(self, _monotonic: float) -> float:
        """After every loop pass: start what can start, tell renders, commit what changed."""
        farm = self.farm
        if farm.solve_needed:
            farm.solve_needed = False
            self.dispatch(time.time())
        if farm.stops:
            self.push_stops()
        if farm.exits:
            for render in farm.exits:
                if render.identity is not None:
                    self.conn.reply(
                        render.identity,
                        P.MsgType.RENDER_EVENTS,
                        {"id": render.id, "instruction": "exit"},
                    )
            farm.exits.clear()
        if farm.deleted_jobs:
            for job in farm.deleted_jobs:
                self.outputs.drop_job(job.id)
            farm.deleted_jobs.clear()
        self.flush()
        return float("inf")

    def dispatch(self, now: float) -> None:
        """Solve, and push every start to its render at once (SPEC A2: no waiting for a beat)."""
        by_render: dict[int, list[dict[str, Any]]] = {}
        renders = {}
        for render, task in self.solver.solve(now):
            by_render.setdefault(render.id, []).append(task)
            renders[render.id] = render
        for render_id, tasks in by_render.items():
            render = renders[render_id]
            if render.identity is not None:
                self.conn.reply(
                    render.identity,
                    P.MsgType.RENDER_EVENTS,
                    {"id": render.id, "tasks_start": tasks},
                )

    def push_stops(self) -> None:
        by_render: dict[int, list[list[int]]] = {}
        renders = {}
        for render, key in self.farm.stops:
            by_render.setdefault(render.id, []).append(key)
            renders[render.id] = render
        self.farm.stops.clear()
        for render_id, keys in by_render.items():
            render = renders[render_id]
            if render.identity is not None:
                self.conn.reply(
                    render.identity, P.MsgType.RENDER_EVENTS, {"id": render.id, "tasks_stop": keys}
                )

    def flush(self) -> None:
        farm = self.farm
        if farm.dirty_renders:
            self.store.save(
                "renders",
                [farm.renders[i].settings() for i in farm.dirty_renders if i in farm.renders],
            )
            farm.dirty_renders.clear()
        if farm.dirty_users:
            self.store.save("users", [farm.users[n].to_json() for n in farm.dirty_users])
            farm.dirty_users.clear()
        if farm.deleted_renders:
            self.store.delete("renders", farm.deleted_renders)
            farm.deleted_renders.clear()

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
