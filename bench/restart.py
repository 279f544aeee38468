"""afserver restart: how soon a restarted server answers with its farm, and dispatches again.

big: 100 jobs x 10,000 unstarted tasks (1,000,000), no renders. afserver is stopped with
SIGTERM and started on the same store; serve_sec is the wall time from starting the
afserver process until `get jobs` answers with all 100 jobs, restore_sec the scheduler's own
"restored from ...: {... 'seconds': ...}" log figure (the store read and the farm rebuilt,
no imports, no broker connection). Then one afrender starts, and first_dispatch_sec is the
time from the render being seen online until any task runs or is done.

done jobs: the same restart on a farm with 10 done jobs, then on one with 1,000 done jobs
(10 tasks each, made done by skipping their tasks), both beside 10 unfinished jobs of 100
tasks. The median of --repeats restarts of each is compared: a done job should cost
(almost) nothing to bring back, so the ratio should stay near 1.

Every restart also reports where its time went, from afserver's own log lines (wall clock,
millisecond stamps): spawn_sec until the supervisor started the scheduler, boot_sec until
the scheduler began its restore (interpreter, imports, store open), restore_sec, and
after_restore_sec until the answer (broker connection, the first solve, the request).

Prints one JSON line on stdout; logs go to stderr; exits 1 when something failed (a server
that did not come up, a job not done), never for a missed target.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import logging
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# Run as `python bench/restart.py`, this file's folder is sys.path[0], where bench/broker.py
# would shadow the `broker` package: put the project root there instead, before importing it.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import zmq  # noqa: E402

from bench._common import (  # noqa: E402
    MB,
    BenchError,
    afserver_env,
    ask,
    child,
    free_port,
    guarded,
    logs_on_failure,
    machine,
    pg_database,
    report,
    settled_rss,
    spawn,
    stop,
    stop_all,
    submit_many,
    wait_for,
)
from broker import protocol as P  # noqa: E402
from broker.client import Client  # noqa: E402

log = logging.getLogger("bench.restart")

ASK_TIMEOUT = 0.5  # client timeout of one poll while the server comes up
RECONNECT_MS = 10  # our client's reconnect pace: libzmq's 100 ms default would blur serve_sec
START_TIMEOUT = 20.0  # a fresh, empty afserver answering
SERVE_TIMEOUT = 60.0  # a restarted afserver answering with all its jobs
ONLINE_TIMEOUT = 20.0
DISPATCH_TIMEOUT = 30.0
STATE_TIMEOUT = 10.0  # skipped jobs reported DON
LOG_TIMEOUT = 5.0  # the "restored from" line written (it precedes the answer)
RSS_SETTLE_TIMEOUT = 5.0
BIG_JOBS = 100
OPEN_JOBS = 10
OPEN_TASKS = 100
DONE_TASKS = 10
DONE_COUNTS = (10, 1000)

TARGETS = {
    "big_serve_sec_max": 10.0,
    "first_dispatch_sec_max": 1.0,
    "done_serve_ratio_max": 1.2,
}

# afserver's log format (config/logs.py): "date time LEVEL name[pid] logger: message"
_STAMP = r"^(?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "
STARTED_RE = re.compile(_STAMP + r"INFO afserver\[\d+\] afserver: started scheduler \(pid (\d+)\)")
RESTORED_RE = re.compile(
    _STAMP + r"INFO scheduler\[\d+\] scheduler: restored from (?P<path>.*): (?P<info>\{.*\})$"
)


def log_time(stamp: str) -> float:
    """A log line's stamp as epoch seconds (logging writes local time, to the millisecond)."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


@dataclass
class Start:
    """One afserver start: when (wall and monotonic) and where its log lines begin."""

    wall: float
    mono: float
    log_offset: int


@dataclass
class Server:
    """One afserver in a temp dir with its own config, store and HOME, restartable in place.

    Its stdout and stderr (and so the scheduler's, inherited) go to one log file, read from
    where each start began."""

    tmp: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    renders: list[subprocess.Popen[bytes]] = field(default_factory=list)
    client: Client | None = None
    ctx: zmq.Context = field(default_factory=zmq.Context)

    store_db: str = ""  # af_store_db: a PostgreSQL store (--postgresql), else SQLite

    def __post_init__(self) -> None:
        self.log_file = self.tmp / "afserver.log"
        self.env = afserver_env(
            self.tmp, self.port, af_render_heartbeat_sec=1, af_store_db=self.store_db
        )
        self.ctx.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)

    def start(self) -> Start:
        """Launch afserver and a fresh client; returns at once (the caller waits as it likes).

        A fresh client per start: nothing the old server left unanswered is waited for."""
        if self.client is not None:
            self.client.close()
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        self.client = Client(P.endpoint("127.0.0.1", self.port), timeout=5.0, ctx=self.ctx)
        started = Start(time.time(), time.monotonic(), offset)
        self.proc = spawn(["-m", "workers.supervisor"], self.env, self.log_file)
        return started

    def start_fresh(self) -> None:
        """First start on an empty store: wait for a REPLY to stat (broker and scheduler)."""
        self.start()
        wait_for(lambda: self.answer({"get": {"type": "stat"}}), START_TIMEOUT, "afserver")

    def answer(self, body: dict[str, Any]) -> Any:
        """One short poll, or None; BenchError when afserver itself has exited."""
        assert self.proc is not None and self.client is not None
        if self.proc.poll() is not None:
            raise BenchError(f"afserver exited with code {self.proc.returncode}")
        return ask(self.client, body, ASK_TIMEOUT)

    def request(self, body: dict[str, Any], timeout: float = 5.0) -> Any:
        assert self.client is not None
        return self.client.request(body, timeout=timeout)

    def start_render(self, name: str) -> subprocess.Popen[bytes]:
        proc = spawn(
            ["-m", "render.main", "--name", name], self.env, self.tmp / f"render-{name}.log"
        )
        self.renders.append(proc)
        return proc

    def scheduler(self) -> psutil.Process:
        """The afserver child running the scheduler, to read its RSS."""
        assert self.proc is not None
        return child(self.proc.pid, "workers.scheduler.main")

    def log_since(self, start: Start) -> str:
        with open(self.log_file, "rb") as f:
            f.seek(start.log_offset)
            return f.read().decode(errors="replace")

    def stop(self) -> None:
        """Renders first (they deregister through the server), then afserver, waited for."""
        stop_all(self.renders, "afrender")
        self.renders.clear()
        stop(self.proc, "afserver")

    def close(self) -> None:
        """Everything stopped and the client's context gone; safe to call more than once."""
        try:
            self.stop()
        finally:
            if self.client is not None:
                self.client.close()
                self.client = None
            self.ctx.destroy(0)


@contextlib.contextmanager
def server_in(tmp_root: Path, name: str) -> Iterator[Server]:
    """A started server that is always closed, with its log tail on stderr when it failed."""
    tmp = tmp_root / name
    tmp.mkdir()
    with pg_database(POSTGRESQL) as store_db:
        server = Server(tmp, store_db=store_db)
        with logs_on_failure(tmp, server.close, chars=3000):
            server.start_fresh()
            yield server


POSTGRESQL = ""  # --postgresql: the server where each phase gets a database of its own


# --- jobs -------------------------------------------------------------------------------


def summaries(server: Server, mask: str | None = None) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"type": "jobs", "mode": "list"}
    if mask is not None:
        body["mask"] = mask
    return server.request({"get": body}, timeout=10.0)["jobs"]


def make_done(server: Server, count: int) -> None:
    """Skip every task of the done_* jobs in one action, then wait for all to say DON.

    Skipped tasks are DON|SKP, so the jobs are done without a render ever running them."""
    action = {
        "type": "jobs",
        "mask": "done_.*",
        "block_ids": [0],
        "operation": {"type": "skip"},
    }
    server.request({"action": action}, timeout=30.0)

    def all_done() -> bool:
        jobs = summaries(server, "done_.*")
        return len(jobs) == count and all("DON" in j["state"] for j in jobs)

    wait_for(all_done, STATE_TIMEOUT, f"{count} skipped jobs to be DON")
    open_jobs = summaries(server, "open_.*")
    if any("DON" in j["state"] for j in open_jobs):
        raise BenchError("an open_* job is DON: the skip reached the wrong jobs")


# --- one restart ------------------------------------------------------------------------


def parse_restart(text: str, start: Start) -> dict[str, Any] | None:
    """restore_sec and the start's timeline from afserver's log lines, or None if the
    "restored from" line is not there yet."""
    restored = started = None
    for line in text.splitlines():
        if m := STARTED_RE.match(line):
            started = log_time(m["stamp"])
        elif m := RESTORED_RE.match(line):
            restored = m
    if restored is None:
        return None
    info = ast.literal_eval(restored["info"])
    restore = float(info["seconds"])
    done_at = log_time(restored["stamp"])
    out: dict[str, Any] = {"restore_sec": restore, "restored": info}
    if started is not None:
        out["spawn_sec"] = round(started - start.wall, 3)
        out["boot_sec"] = round(done_at - restore - started, 3)
    out["restored_at_sec"] = round(done_at - start.wall, 3)
    return out


def restart(server: Server, jobs: int) -> dict[str, Any]:
    """Stop afserver (SIGTERM, waited for), start it on the same store, and time it until
    the scheduler answers and counts all `jobs` jobs (`get stat`: done jobs stay in the
    store until asked for, so listing them all would time their reading, not the restart)."""
    server.stop()
    start = server.start()

    def served() -> bool:
        reply = server.answer({"get": {"type": "stat"}})
        return (
            reply is not None and reply["scheduler"]["jobs_total"] == jobs + 1
        )  # and the system job

    wait_for(served, SERVE_TIMEOUT, f"the restarted afserver to answer with {jobs} jobs")
    serve = time.monotonic() - start.mono
    parsed = wait_for(
        lambda: parse_restart(server.log_since(start), start),
        LOG_TIMEOUT,
        "the scheduler's 'restored from' log line",
    )
    restored_at = parsed.pop("restored_at_sec")
    out = {
        "serve_sec": round(serve, 3),
        **parsed,
        "after_restore_sec": round(serve - restored_at, 3),
    }
    restored = out["restored"]["jobs"] + out["restored"].get("done_jobs_left_in_store", 0)
    if restored != jobs:
        raise BenchError(f"restored {restored} jobs, expected {jobs}")
    return out


# --- big --------------------------------------------------------------------------------


def render_online(server: Server, name: str, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise BenchError(f"afrender {name} exited with code {proc.returncode}")
    reply = server.answer({"get": {"type": "renders"}})
    return any(r["name"] == name and r.get("online") for r in (reply or {}).get("renders", []))


def any_task_started(server: Server) -> bool:
    reply = server.answer({"get": {"type": "jobs"}})
    jobs = (reply or {}).get("jobs", [])
    return any(j["tasks_running"] > 0 or j["tasks_done"] > 0 for j in jobs)


def first_dispatch(server: Server) -> dict[str, float]:
    """One afrender on the restarted farm: from seen online to the first task started."""
    started = time.monotonic()
    proc = server.start_render("bench-r1")
    wait_for(lambda: render_online(server, "bench-r1", proc), ONLINE_TIMEOUT, "bench-r1 online")
    online = time.monotonic()
    wait_for(lambda: any_task_started(server), DISPATCH_TIMEOUT, "the first task to start")
    dispatched = time.monotonic()
    return {
        "first_dispatch_sec": round(dispatched - online, 3),
        "render_online_sec": round(online - started, 3),
    }


def big_run(tmp_root: Path, tasks_per_job: int) -> dict[str, Any]:
    """BIG_JOBS jobs of unstarted tasks, one restart, then one render's first dispatch."""
    with server_in(tmp_root, "big") as server:
        total = BIG_JOBS * tasks_per_job
        log.info("big: submitting %d jobs x %d tasks", BIG_JOBS, tasks_per_job)
        submit = submit_many(server, "big_", BIG_JOBS, tasks_per_job)
        log.info("big: submitted in %.1f s; restarting", submit)
        timing = restart(server, BIG_JOBS)
        rss = settled_rss(server.scheduler(), RSS_SETTLE_TIMEOUT)
        log.info("big: %s", timing)
        dispatch = first_dispatch(server)
        log.info("big: %s", dispatch)
    restored = timing.pop("restored")
    if restored["tasks"] != total:
        raise BenchError(f"restored {restored['tasks']} tasks, expected {total}")
    return {
        "jobs": BIG_JOBS,
        "tasks": total,
        "submit_sec": round(submit, 3),
        "serve_sec": timing.pop("serve_sec"),
        "restore_sec": timing.pop("restore_sec"),
        "scheduler_rss_mb": round(rss / MB, 1),
        "first_dispatch_sec": dispatch["first_dispatch_sec"],
        "render_online_sec": dispatch["render_online_sec"],
        "serve_breakdown": timing,
    }


# --- done jobs --------------------------------------------------------------------------


def done_case(tmp_root: Path, done: int, repeats: int) -> dict[str, Any]:
    """`done` done jobs beside OPEN_JOBS open ones, restarted `repeats` times: medians."""
    with server_in(tmp_root, f"done{done}") as server:
        submit = submit_many(server, "done_", done, DONE_TASKS)
        submit += submit_many(server, "open_", OPEN_JOBS, OPEN_TASKS)
        make_done(server, done)
        log.info("done=%d: submitted and skipped in %.1f s; restarting", done, submit)
        runs = []
        for _ in range(repeats):
            runs.append(restart(server, done + OPEN_JOBS))
            runs[-1].pop("restored")
            log.info("done=%d: %s", done, runs[-1])
    keys = ("serve_sec", "restore_sec", "spawn_sec", "boot_sec", "after_restore_sec")
    medians = {k: median([r.get(k) for r in runs]) for k in keys}
    return {**medians, "runs": runs}


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def ratio(high: float | None, low: float | None) -> float | None:
    return round(high / low, 3) if high is not None and low else None


def done_run(tmp_root: Path, repeats: int) -> dict[str, Any]:
    cases = {str(n): done_case(tmp_root, n, repeats) for n in DONE_COUNTS}
    low, high = (cases[str(n)] for n in DONE_COUNTS)
    return {
        **cases,
        "serve_ratio": ratio(high["serve_sec"], low["serve_sec"]),
        "restore_ratio": ratio(high["restore_sec"], low["restore_sec"]),
    }


# --- the run ----------------------------------------------------------------------------


def at_most(value: Any, limit: float) -> bool | None:
    """True/False against the limit, None when the run that decides it was not made."""
    return value <= limit if isinstance(value, int | float) else None


def targets_met(big: dict[str, Any] | None, done: dict[str, Any] | None) -> dict[str, Any]:
    big, done = big or {}, done or {}
    return {
        "big_serve_sec": at_most(big.get("serve_sec"), TARGETS["big_serve_sec_max"]),
        "first_dispatch_sec": at_most(
            big.get("first_dispatch_sec"), TARGETS["first_dispatch_sec_max"]
        ),
        "done_serve_ratio": at_most(done.get("serve_ratio"), TARGETS["done_serve_ratio_max"]),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Each phase on its own server and store in one temp dir."""
    global POSTGRESQL
    POSTGRESQL = args.postgresql
    errors: list[str] = []
    big = done = None
    with tempfile.TemporaryDirectory(prefix="afbench-restart-") as tmp_name:
        tmp = Path(tmp_name)
        if not args.skip_big:
            big = guarded("big", errors, lambda: big_run(tmp, args.big_tasks))
        if not args.skip_done:
            done = guarded("done_jobs", errors, lambda: done_run(tmp, args.repeats))
    out: dict[str, Any] = {
        "bench": "restart",
        "store": "postgresql" if args.postgresql else "sqlite",
        "machine": machine(platform=platform.platform()),
        "big": big,
        "done_jobs": done,
        "targets": TARGETS,
        "targets_met": targets_met(big, done),
        "ok": not errors,
    }
    if errors:
        out["errors"] = errors
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--big-tasks", type=int, default=10_000, help=f"tasks per job of the {BIG_JOBS} big jobs"
    )
    parser.add_argument("--skip-big", action="store_true", help="no 1M-task restart")
    parser.add_argument("--skip-done", action="store_true", help="no done-jobs comparison")
    parser.add_argument(
        "--postgresql",
        default="",
        help="the store on PostgreSQL: a server's connection string without dbname "
        '("host=127.0.0.1 user=postgres"); each phase gets a fresh af_pg_bench_* database',
    )
    parser.add_argument("--repeats", type=int, default=3, help="restarts per done-jobs case")
    args = parser.parse_args(argv)
    if args.big_tasks < 1 or args.repeats < 1:
        parser.error("--big-tasks and --repeats must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report(lambda: run(args))


if __name__ == "__main__":
    main()
