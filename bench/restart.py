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
import ctypes
import json
import logging
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

# Run as `python bench/restart.py`, this file's folder is sys.path[0], where bench/broker.py
# would shadow the `broker` package: put the project root there instead, before importing it.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import zmq  # noqa: E402

from broker import protocol as P  # noqa: E402
from broker.client import Client, ClientError  # noqa: E402

log = logging.getLogger("bench.restart")

T = TypeVar("T")

POLL_SEC = 0.02  # readiness, online and dispatch polls
ASK_TIMEOUT = 0.5  # client timeout of one poll while the server comes up
RECONNECT_MS = 10  # our client's reconnect pace: libzmq's 100 ms default would blur serve_sec
START_TIMEOUT = 20.0  # a fresh, empty afserver answering
SERVE_TIMEOUT = 60.0  # a restarted afserver answering with all its jobs
ONLINE_TIMEOUT = 20.0
DISPATCH_TIMEOUT = 30.0
STATE_TIMEOUT = 10.0  # skipped jobs reported DON
LOG_TIMEOUT = 5.0  # the "restored from" line written (it precedes the answer)
STOP_TIMEOUT = 10.0  # afserver stops its children within 5 s itself
SUBMIT_TIMEOUT = 60.0  # one reply to a 10,000-task submission
RSS_STABLE_SEC = 0.5
RSS_TOLERANCE = 64 * 1024
RSS_SETTLE_TIMEOUT = 5.0
BIG_JOBS = 100
OPEN_JOBS = 10
OPEN_TASKS = 100
DONE_TASKS = 10
DONE_COUNTS = (10, 1000)
MB = 1024 * 1024
_PR_SET_PDEATHSIG = 1

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


class BenchError(Exception):
    """A run that could not be measured: the line says ok false."""


# --- waiting ----------------------------------------------------------------------------


def wait_for(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll until condition() returns something truthy; BenchError when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL_SEC)


def ask(client: Client, body: dict[str, Any], timeout: float = ASK_TIMEOUT) -> Any:
    """A request whose failure means "not yet" while things come up."""
    try:
        return client.request(body, timeout=timeout)
    except ClientError:
        return None


# --- processes --------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on now; the server binds it a moment later."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: a killed benchmark must not leave processes behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop(proc: subprocess.Popen[bytes] | None, what: str) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT: the benchmark never leaves a process."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.warning("%s (pid %d) did not stop in %g s: killed", what, proc.pid, STOP_TIMEOUT)
        proc.kill()
        proc.wait()


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

    def __post_init__(self) -> None:
        self.config_file = self.tmp / "config.json"
        config = {
            "af_serverport": self.port,
            "af_server_bind_address": "127.0.0.1",
            "af_servername": "127.0.0.1",
            "af_store_folder": str(self.tmp / "store"),
            "af_render_heartbeat_sec": 1,
        }
        self.config_file.write_text(json.dumps(config))
        self.log_file = self.tmp / "afserver.log"
        # The caller's environment without its AF_* settings, so only our config counts.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AF_")}
        self.env.update(
            {"AF_CONFIG": str(self.config_file), "HOME": str(self.tmp), "PYTHONUNBUFFERED": "1"}
        )
        self.ctx.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)

    def spawn(self, argv: list[str], out_path: Path) -> subprocess.Popen[bytes]:
        out = open(out_path, "ab")  # noqa: SIM115 - the process owns it
        try:
            return subprocess.Popen(
                [sys.executable, *argv],
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        finally:
            out.close()

    def start(self) -> Start:
        """Launch afserver and a fresh client; returns at once (the caller waits as it likes).

        A fresh client per start: nothing the old server left unanswered is waited for."""
        if self.client is not None:
            self.client.close()
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        self.client = Client(P.endpoint("127.0.0.1", self.port), timeout=5.0, ctx=self.ctx)
        started = Start(time.time(), time.monotonic(), offset)
        self.proc = self.spawn(["-m", "workers.supervisor"], self.log_file)
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
        return ask(self.client, body)

    def request(self, body: dict[str, Any], timeout: float = 5.0) -> Any:
        assert self.client is not None
        return self.client.request(body, timeout=timeout)

    def start_render(self, name: str) -> subprocess.Popen[bytes]:
        proc = self.spawn(["-m", "render.main", "--name", name], self.tmp / f"render-{name}.log")
        self.renders.append(proc)
        return proc

    def scheduler(self) -> psutil.Process:
        """The afserver child running the scheduler, to read its RSS."""
        assert self.proc is not None
        for proc in psutil.Process(self.proc.pid).children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if "workers.scheduler.main" in proc.cmdline():
                    return proc
        raise BenchError("afserver has no scheduler child")

    def log_since(self, start: Start) -> str:
        with open(self.log_file, "rb") as f:
            f.seek(start.log_offset)
            return f.read().decode(errors="replace")

    def stop(self) -> None:
        """Renders first (they deregister through the server), then afserver, waited for."""
        for proc in self.renders:
            stop(proc, "afrender")
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

    def log_tail(self, chars: int = 3000) -> str:
        paths = [self.log_file, *sorted(self.tmp.glob("render-*.log"))]
        return "".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in paths if p.exists()
        )


@contextlib.contextmanager
def server_in(tmp_root: Path, name: str) -> Iterator[Server]:
    """A started server that is always closed, with its log tail on stderr when it failed."""
    tmp = tmp_root / name
    tmp.mkdir()
    server = Server(tmp)
    try:
        server.start_fresh()
        yield server
    except BaseException:
        sys.stderr.write(server.log_tail())
        raise
    finally:
        server.close()


# --- jobs -------------------------------------------------------------------------------


def numeric_job(name: str, tasks: int) -> dict[str, Any]:
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": tasks, "command": "true"}
    return {"job": {"name": name, "blocks": [block]}}


def submit_many(server: Server, prefix: str, jobs: int, tasks: int) -> float:
    """Submit `jobs` jobs named prefix0.. one by one; returns the wall time it took."""
    started = time.monotonic()
    for i in range(jobs):
        server.request(numeric_job(f"{prefix}{i}", tasks), timeout=SUBMIT_TIMEOUT)
    return time.monotonic() - started


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
        return reply is not None and reply["scheduler"]["jobs_total"] == jobs

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


def settled_rss(proc: psutil.Process) -> int:
    """RSS once it stopped moving for RSS_STABLE_SEC (the first solve may still allocate)."""
    deadline = time.monotonic() + RSS_SETTLE_TIMEOUT
    rss = proc.memory_info().rss
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < RSS_STABLE_SEC:
        if time.monotonic() >= deadline:
            return rss
        time.sleep(POLL_SEC)
        now_rss = proc.memory_info().rss
        if abs(now_rss - rss) > RSS_TOLERANCE:
            rss, stable_since = now_rss, time.monotonic()
    return rss


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
        rss = settled_rss(server.scheduler())
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


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pyzmq": zmq.__version__,
        "platform": platform.platform(),
    }


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


def guarded(name: str, errors: list[str], measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one phase; a failure is reported in the line and the other phases still run."""
    try:
        result = measure()
        log.info("%s: %s", name, result)
        return result
    except (BenchError, ClientError, psutil.Error, OSError) as exc:
        log.error("%s failed: %s", name, exc)
        errors.append(f"{name}: {exc}")
        return {"error": str(exc)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Each phase on its own server and store in one temp dir."""
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
        "machine": machine(),
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
    parser.add_argument("--repeats", type=int, default=3, help="restarts per done-jobs case")
    args = parser.parse_args(argv)
    if args.big_tasks < 1 or args.repeats < 1:
        parser.error("--big-tasks and --repeats must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop afserver and the render.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = run(args)
    print(json.dumps(result), flush=True)
    if not result["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
