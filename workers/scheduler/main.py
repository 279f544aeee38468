"""The scheduler process: one loop over broker requests and periodic checks, one store."""

from __future__ import annotations

import json
import logging
import os
import pwd
import signal
import socket
import sqlite3
import sys
import time
from typing import Any

import zmq

from broker import protocol as P
from broker import workerlink
from broker.workerlink import WorkerLink
from config import load_config
from config.loader import shown_config
from config.logs import setup_logging, verbosity_from_env
from stats import doorbell, stats_enabled
from workers.base import WorkerConnection, WorkerLoop
from workers.scheduler import (
    EXIT_LEADERSHIP_LOST,
    EXIT_STORE_ERROR,
    checkpoints,
    collector,
    monitors,
    wakes,
)
from workers.scheduler import permissions as perms
from workers.scheduler.committer import Committer
from workers.scheduler.farm import Farm, Refused
from workers.scheduler.handlers import SchedulerHandler
from workers.scheduler.output import OutputStore
from workers.scheduler.periodic import Periodic
from workers.scheduler.pools import Builtins
from workers.scheduler.solver import Solver
from workers.scheduler.store import ACTIVE_KEY, LeadershipLost, Store, StoreError, open_store
from workers.scheduler.storehealth import StoreHealth
from workers.scheduler.sync import FarmStore, StoreFaulted

log = logging.getLogger("scheduler")

CHECK_RENDERS_SEC = 1.0  # every render is looked at once a round...
CHECK_SLICES = 10  # ...a slice at a time: 10,000 renders cost the loop 3 ms, not 30, a go;
RENDERS_PER_SLICE = 1_000  # but a farm this small is one slice: an idle loop wakes at 1 Hz
# Task work per loop pass, in small pieces so heartbeats are answered between them: a few
# ms of starts and of finals. When 10,000 tasks end within seconds of each other, passes
# run back to back; 50 and 25 made them 10-40 ms and the heartbeat p99 of that window
# 80-110 ms, 25 and 12 about 30 (10,000 renders, p99 46 -> 27-31 ms). Smaller batches cost
# a solve and a commit per fewer tasks: 1,000 renders, 0 s tasks, 6,539 -> 4,848 tasks/s.
SOLVE_BATCH = 25
# Renders freed within this time share one solve; a full batch goes on at once. (When each
# solve ranked every job afresh, 1,000 jobs: ~1.5 ms, solving after each final spent a sixth
# of the loop ranking; the solver keeps its ranking now, but a solve still looks at the
# ready renders and commits.) The gap grows with what a solve costs (solve_gap): one render
# of 0 s tasks waited the whole 50 ms for a solve of a tenth of a millisecond.
SOLVE_GAP_SEC = 0.05
SOLVE_GAP_FACTOR = 10  # the gap: up to ten times the last solve, so solving stays under 10 %
FINALS_BATCH = 12  # final reports per loop pass (SchedulerHandler.handle_finals)
REFRESH_SEC = 1.0  # time waits, run-time limits, forgiveness; solving itself is event driven


def check_slices(renders: int) -> int:
    """How many checks a round of `renders` is cut into: none looks at more than
    RENDERS_PER_SLICE renders (a few ms of the loop), and no more than CHECK_SLICES."""
    return min(CHECK_SLICES, max(1, -(-renders // RENDERS_PER_SLICE)))


def solve_gap(solve_sec: float, new_jobs_only: bool = False) -> float:
    """How long after a solve that took `solve_sec` the next may begin: batching grows with
    what solving costs (a large farm's solves share the freed renders of 50 ms), and adds
    no wait where a solve is cheap (a small farm's next task starts at once). A solve for
    new jobs only keeps the whole gap: submissions come hundreds a second, their first
    starts share a solve, and no render freed by a task waits on it."""
    if new_jobs_only:
        return SOLVE_GAP_SEC
    return min(SOLVE_GAP_SEC, SOLVE_GAP_FACTOR * solve_sec)


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


def server_user() -> str:
    """The OS user running afserver: it owns the farm, so it is an admin."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, OSError):
        return ""


def policy_from_config(cfg: Any) -> perms.Policy:
    return perms.Policy(
        admins=perms.admins(cfg["af_admins"], server_user()),
        authenticated=bool(cfg["af_auth"]),
        user_mod_job_priority=bool(cfg["af_perm_user_mod_job_priority"]),
        user_mod_his_priority=bool(cfg["af_perm_user_mod_his_priority"]),
    )


def builtins_from_config(cfg: Any) -> Builtins:
    return Builtins(
        heartbeat_sec=cfg["af_render_heartbeat_sec"],
        resources_update_period=cfg["af_render_up_resources_period"],
        zombie_time=cfg["af_render_zombietime"],
        exit_no_task_time=cfg["af_render_exit_no_task_time"],
    )


class Scheduler:
    """Wires the farm to its edges: the broker connection, the store and the checks."""

    def __init__(
        self,
        cfg: Any,
        ctx: zmq.Context,
        link: WorkerLink | None = None,
        store: Store | None = None,
    ) -> None:
        """`link`: afserver's private link to its broker; tests that never connect leave it
        out (replies then wait in the outbox). `store`: one opened (and, on PostgreSQL,
        acquired) before; else the one the configuration names."""
        self.host = server_name(cfg)
        self.store = store if store is not None else open_store(cfg, self.host)
        self.store.acquire()  # a PostgreSQL store: a standby waited for it before (standby.py)
        self.checkpoints: checkpoints.Checkpointer | None = None
        if isinstance(self.store.db, sqlite3.Connection):
            checkpoints.configure_writer(self.store.db)  # the log is copied on a thread
            self.checkpoints = checkpoints.Checkpointer(self.store.path)
            self.store.on_commit = self.checkpoints.wake
        now = time.time()
        self.farm = Farm(builtins_from_config(cfg), now, user_defaults(cfg))
        self.farm.progress_timeout = cfg["af_task_progress_change_timeout"]
        self.farm.reconnect_timeout = cfg["af_task_reconnect_timeout"]
        self.farm.wolwake_cmd = cfg["af_render_cmd_wolwake"]
        self.wake_timeout = float(cfg["af_wolwake_timeout"])
        self.wake_retries = int(cfg["af_wolwake_retries"])
        self.wake_interval = float(
            cfg["af_wolwake_interval"]
        )  # seconds (the original: cycles of 1 s)
        self.next_auto_wake = 0.0
        self.check_round: list[Any] = []  # the renders of this round of checks
        self.check_done = 0  # how many of them were looked at
        self.farm.overflow = (
            float(cfg["af_render_overflow_mem"]),
            float(cfg["af_render_overflow_swap"]),
            float(cfg["af_render_overflow_hdd"]),
        )
        self.sync = FarmStore(self.store, self.farm)
        self.health = StoreHealth(str(self.store.folder))
        self.held_starts: list[tuple[Any, dict[str, Any]]] = []  # solved, not yet committed
        restored = self.sync.restore(now)
        self.farm.create_system_job(
            (
                cfg["af_sysjob_postcmd_service"],
                cfg["af_sysjob_wol_service"],
                cfg["af_sysjob_events_service"],
            ),
            tasksmax=cfg["af_sysjob_tasksmax"],
            tasklife=cfg["af_sysjob_tasklife"],
            capacity=cfg["af_task_default_capacity"],
            now=now,
        )
        restored["system_commands"] = self.sync.restore_system(now)
        log.info("restored from %s: %s", self.store.path, restored)
        self.active_since = now
        self.took_from = self._take_over(now)
        self.health.role = self.server_role
        self.outputs = OutputStore(cfg["af_store_folder"], cfg["af_render_task_read_buffer_size"])
        self.committer = Committer(self.sync, self.outputs, self.health, self.host)
        self.commit = self.committer.commit
        self.solver = Solver(self.farm)
        # the rows go to the store's outbox; afserver's stats process writes them out
        self.sync.stats_off = not stats_enabled(cfg)
        bell = doorbell.path_from_env()
        if bell is not None and not self.sync.stats_off:  # the writer sleeps until rung
            self.sync.on_stats = doorbell.Ringer(bell).ring
        self.conn = WorkerConnection(
            ctx,
            link or WorkerLink("inproc://no-broker", ""),
            P.SCHEDULER,
            heartbeat_sec=cfg["af_worker_heartbeat_sec"],
            liveness=cfg["af_worker_liveness"],
            message_size_max=cfg["af_message_size_max"],
        )
        self.handler = SchedulerHandler(
            self.conn,
            self.farm,
            self.outputs,
            on_new_job=self.on_new_job,
            store_check=self.store_check,
            policy=policy_from_config(cfg),
            health=self.health,
            on_store_fault=self.committer.failed,
            config=shown_config(cfg),
        )
        self.new_jobs: set[int] = set()  # submitted since the last push to monitors
        self.next_solve = 0.0  # monotonic: no solve begins before (SOLVE_GAP_SEC)
        log.info("admins: %s", ", ".join(sorted(self.handler.policy.admins)))
        self.periodic = Periodic(ctx)
        self.check_slices = 1  # a round's slices, one check each (check_slices)
        self.periodic.every(CHECK_RENDERS_SEC, "check_renders")
        self.periodic.every(REFRESH_SEC, "refresh")
        self.periodic.every(collector.FREEZE_SEC, "gc_freeze")
        self.periodic.every(collector.COLLECT_ALL_SEC, "gc_collect_all")
        self.loop = WorkerLoop(self.conn, self.handler, tick=self.tick)
        self.loop.add_socket(self.periodic.pull, self.on_periodic)

    def _take_over(self, now: float) -> dict[str, Any] | None:
        """Note in the store that this server is the active one (standbys name it in their
        refusals); returns the one that was before, if another."""
        if self.store.backend == "sqlite":
            return None
        text = self.store.meta(ACTIVE_KEY)
        before = json.loads(text) if text else None
        with self.store.transaction():
            mine = {"server": self.host, "since": now, "pid": os.getpid()}
            self.store.set_meta(ACTIVE_KEY, json.dumps(mine))
        return before if before and before.get("server") != self.host else before

    def server_role(self) -> dict[str, Any]:
        """For afcmd stat and the web: this server's part, and the standbys it knows of."""
        role: dict[str, Any] = {
            "name": self.host,
            "role": "active",
            "backend": self.store.backend,
            "active_since": self.active_since,
        }
        if self.store.backend != "sqlite":
            role["standbys"] = self.store.standbys()
        return role

    def on_new_job(self, job: Any) -> None:
        try:
            self.sync.insert_job(job)  # stored before it is acknowledged
        except LeadershipLost:
            self.loop.stop()  # the tick's commit fails the same way and ends the scheduler
            raise Refused(
                "this afserver is no longer the active one; nothing was submitted"
            ) from None
        except StoreFaulted as exc:
            self.committer.failed(exc.__cause__ or exc, "submission")
            raise Refused(f"{self.health.refusal()}; nothing was submitted") from exc
        if self.handler.monitors.by_identity:
            self.new_jobs.add(job.id)

    def store_check(self) -> dict[str, Any]:
        self.commit(time.monotonic())
        return {
            **self.store.check(),
            "commits": self.sync.commits,
            "health": self.health.to_json(time.monotonic()),
            **self.farm.stat(),
        }

    def on_periodic(self, _monotonic: float) -> None:
        now = time.time()
        for check in self.periodic.receive():
            if check == "check_renders":
                # zombies' runs end through runs.finish, which the kept ranking follows:
                # no rebuild (10,000 jobs: ~5-20 ms) ten times a second
                self.check_renders(now)
            elif check == "gc_freeze":
                collector.freeze()
            elif check == "gc_collect_all":
                pause, found = collector.collect_all()
                log.info("garbage collection: %d unreachable, %.0f ms", found, pause * 1000)
            elif check == "refresh":
                self.store.keep_alive()  # an idle session would lose the store's lock
                self.farm.ranking_stale = True  # waits, limits, forgiveness: not followed
                self.farm.refresh(now)
                self.handler.rare.flush()
                self.periodic.flush()

    def check_renders(self, now: float) -> None:
        """One slice of the round: zombies, render events, wakes and sleeps. A round looks at
        every render once per CHECK_RENDERS_SEC; spreading it keeps heartbeats answered."""
        farm = self.farm
        if self.check_done >= len(self.check_round):  # a new round
            self.check_round, self.check_done = list(farm.renders.values()), 0
            slices = check_slices(len(self.check_round))
            if slices != self.check_slices:  # the next checks come at the round's pace
                self.check_slices = slices
                self.periodic.every(CHECK_RENDERS_SEC / slices, "check_renders")
            for monitor in self.handler.monitors.expire(now):
                log.info("monitor %d of %s: silent, dropped", monitor.id, monitor.user_name)
            if now >= self.next_auto_wake and wakes.wake_for_work(farm, now) is not None:
                self.next_auto_wake = now + self.wake_interval
        step = -(-len(self.check_round) // self.check_slices)
        part = [
            r
            for r in self.check_round[self.check_done : self.check_done + step]
            if farm.renders.get(r.id) is r  # not deleted since the round began
        ]
        self.check_done += step
        for render in farm.check_zombies(now, part):
            log.warning("render %s (id %d) is a zombie: offline", render.name, render.id)
            farm.log_row(now, render.name, "renders", render.name, "offline: zombie")
        farm.check_render_events(now, part)
        wakes.check_wakes(farm, now, self.wake_timeout, self.wake_retries, part)
        wakes.sleep_idle(farm, now, part)

    def tick(self, mono: float) -> float:
        """After every loop pass: start what can start, commit, then tell the renders.

        Nothing that reveals a change (a start, the close of a final result) leaves before
        the change is committed, so a crash can never make a task run twice."""
        farm = self.farm
        degraded = self.health.degraded  # results wait at the renders, nothing starts
        if self.handler.finals and not degraded:
            self.handler.handle_finals(FINALS_BATCH)
        starts: list[tuple[Any, dict[str, Any]]] = []
        solving = 0.0
        if (farm.solve_needed or farm.solve_new) and mono >= self.next_solve and not degraded:
            only = None if farm.solve_needed else farm.solve_new
            farm.solve_needed, farm.solve_new = False, set()
            solving = time.perf_counter()
            starts = self.solver.solve(
                time.time(), max_starts=SOLVE_BATCH, only=only, keep_ranking=True
            )
            took = time.perf_counter() - solving
            farm.timings.solve.observe(took)
            # a full batch may leave more to start: the next pass goes on, after the messages
            # that came meanwhile (heartbeats are answered between batches)
            full = len(starts) >= SOLVE_BATCH
            farm.solve_needed = full
            self.next_solve = mono if full else mono + solve_gap(took, only is not None)
        watched = self.handler.monitors.by_identity
        pushed = (
            monitors.changes(farm, self.handler.monitors, time.time(), self.new_jobs)
            if watched
            else {}
        )
        self.new_jobs.clear()
        farm.progressed.clear()  # pushed above, or nobody to show it to
        committed = self.commit(mono)
        if pushed:  # monitors see the farm as it is, committed or not
            pushed["sent"] = time.time()  # a page measures how late it shows a change
            for monitor in list(watched.values()):
                self.conn.reply(monitor.identity, P.MsgType.MONITOR_EVENTS, pushed)
        if not committed:  # starts, stops and closes wait for the commit
            self.held_starts += starts
            return self.health.next_retry
        if degraded:  # left just now: solve what waited
            farm.solve_needed = True
        starts = self._committed_starts(starts)
        for render, events in self._events(starts):
            self.conn.reply(render.identity, P.MsgType.RENDER_EVENTS, {"id": render.id, **events})
        if starts and solving:  # the starts of this pass are on their way to the renders
            farm.timings.dispatch.observe(time.perf_counter() - solving)
        if farm.deleted_jobs:
            for job in farm.deleted_jobs:
                self.outputs.drop_job(job.id)
            farm.deleted_jobs.clear()
        if self.handler.finals:  # more than a batch, or some waited while the store was full
            return mono
        return self.next_solve if farm.solve_needed or farm.solve_new else float("inf")

    def _committed_starts(
        self, starts: list[tuple[Any, dict[str, Any]]]
    ) -> list[tuple[Any, dict[str, Any]]]:
        """Starts held while the store was full, now committed, with this pass's: those
        whose run is still on its render (one may have been returned to ready meanwhile)."""
        if not self.held_starts:
            return starts
        held, self.held_starts = self.held_starts, []
        alive = [
            (render, task)
            for render, task in held
            if render.tasks.get((task["job_id"], task["block_id"], task["task_id"]))
            == task["attempt"]
        ]
        return alive + starts

    def _events(self, starts: list[tuple[Any, dict[str, Any]]]) -> list[tuple[Any, dict[str, Any]]]:
        """Starts, stops, closes and exit instructions, gathered into one message per render."""
        farm = self.farm
        events: dict[int, dict[str, Any]] = {}
        renders: dict[int, Any] = {}
        for render, task in starts:
            events.setdefault(render.id, {}).setdefault("tasks_start", []).append(task)
            renders[render.id] = render
        for render_id in {render.id for render, _ in starts}:
            render = renders[render_id]
            render.push_seq += 1  # the number runs.start gave these starts
            events[render_id]["seq"] = render.push_seq
        for render, key in farm.stops:
            events.setdefault(render.id, {}).setdefault("tasks_stop", []).append(key)
            renders[render.id] = render
        for render_id, keys in farm.closes.items():
            if render_id in farm.renders:
                events.setdefault(render_id, {})["tasks_close"] = keys
                renders[render_id] = farm.renders[render_id]
        for render in farm.exits:
            events.setdefault(render.id, {})["instruction"] = "exit"
            renders[render.id] = render
        for render in farm.sleeps:
            events.setdefault(render.id, {})["instruction"] = "sleep"
            renders[render.id] = render
        farm.sleeps.clear()
        for render in farm.config_changed:
            events.setdefault(render.id, {}).update(farm.render_config(render))
            renders[render.id] = render
        farm.config_changed.clear()
        farm.stops.clear()
        farm.closes.clear()
        farm.exits.clear()
        return [(renders[i], e) for i, e in events.items() if renders[i].identity is not None]

    def run(self) -> None:
        collector.freeze()  # the farm as restored
        self.periodic.start()
        if self.checkpoints is not None:
            self.checkpoints.start()
        self.farm.log_row(time.time(), self.host, "server", self.host, "started")
        if self.store.backend != "sqlite":
            before = self.took_from
            line = (
                f"active on the store {self.store.path}"
                if before is None
                else f"took over the store {self.store.path} from {before.get('server')} "
                f"(active since {time.strftime('%H:%M:%S', time.localtime(before.get('since', 0)))})"
            )
            log.warning("%s", line)
            self.farm.log_row(time.time(), self.host, "server", self.host, line)
        try:
            self.loop.run()
        finally:
            self._stop()

    def _stop(self) -> None:
        if not self.store.leader:  # fenced: another server may be active, nothing is ours
            log.critical("the store's lock was lost: stopping without committing anything")
            self.periodic.shutdown()
            self.store.close()
            return
        if not self.health.degraded:  # committed now, so the renders are not asked again
            self.handler.handle_finals()
        self.farm.log_row(time.time(), self.host, "server", self.host, "stopped")
        self.health.next_retry = 0.0  # one last try, whenever the last one was
        if not self.commit(time.monotonic()):
            log.error("stopped with changes not stored: renders send their results again")
        self.periodic.shutdown()
        if self.checkpoints is not None:
            self.checkpoints.stop()
        self.store.close()  # the last connection: it copies the rest of the log


def main() -> None:
    cfg = load_config()
    setup_logging(verbosity_from_env(), "scheduler")
    link = workerlink.from_env()
    if link is None:
        log.critical(
            "the scheduler is started by afserver (%s is not set)", workerlink.ENDPOINT_ENV
        )
        sys.exit(2)
    ctx = zmq.Context()
    try:
        store = wait_for_store(cfg, ctx, link)
        if store is None:
            return  # stopped while a standby
        scheduler = Scheduler(cfg, ctx, link, store)
    except LeadershipLost as exc:
        log.critical("%s", exc)
        sys.exit(EXIT_LEADERSHIP_LOST)
    except StoreError as exc:
        log.critical("%s", exc)
        sys.exit(EXIT_STORE_ERROR)
    signal.signal(signal.SIGTERM, scheduler.loop.stop)
    signal.signal(signal.SIGINT, scheduler.loop.stop)
    try:
        scheduler.run()
    except LeadershipLost as exc:
        log.critical("%s; restarted, this afserver waits as a standby", exc)
        sys.exit(EXIT_LEADERSHIP_LOST)


def server_name(cfg: Any) -> str:
    return f"afserver@{socket.gethostname()}:{cfg['af_serverport']}"


def wait_for_store(cfg: Any, ctx: zmq.Context, link: WorkerLink) -> Store | None:
    """The SQLite store, or the PostgreSQL one once its lock is ours (standby.py); None if
    stopped while waiting."""
    conninfo = str(cfg.get("af_store_db", "") or "").strip()
    if not conninfo:
        return open_store(cfg)
    from workers.scheduler.standby import Standby  # psycopg only where it is used

    waiting = Standby(conninfo, server_name(cfg), ctx, link, cfg)
    signal.signal(signal.SIGTERM, waiting.loop.stop)
    signal.signal(signal.SIGINT, waiting.loop.stop)
    return waiting.run()


if __name__ == "__main__":
    main()
