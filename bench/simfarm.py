"""Farm scale: thousands of simulated renders against a real afserver on loopback.

A fresh afserver (or --server), then --renders simulated renders in --procs processes
(bench/_simrenders.py: ZMTP DEALERs, afrender's wire protocol, no subprocesses). Phases:

1. online: every render registered (time to get there, registration reply times);
2. idle: --idle seconds of heartbeats only (reply times, server CPU);
3. submit: --jobs jobs of --tasks tasks each from --clients concurrent clients (jobs/s);
4. busy: until every task is done, or --duration seconds (dispatch rate, dispatch latency,
   heartbeat reply times, also per 10 s window, server CPU per dispatched task, RSS);
5. churn (--churn K): K times, --churn-renders renders connect, register, heartbeat,
   deregister and close; then sockets in TIME-WAIT on the server's port (`ss`).

Dispatch latency is "ready render -> task start received": from the moment a render has a
free slot (registered, or its final result sent) and the submission is complete, to the
start message arriving. Starts during the submission are counted in the rate, not in the
latency. Heartbeat reply times are measured by the simulator, so they include its own
delays: on a 2-core machine the simulator shares the cores with the server.
`server_heartbeat_ms` is the broker's own figure for the phase (`afcmd stat`: from reading a
heartbeat to sending its reply, counted in buckets, so a percentile is a bucket's upper
bound), the server's part of that time.
CPU is per process (100 = one core busy; the web too: its live feed is a monitor, as on a
real server) over each phase. Memory at the end: the broker's and the scheduler's RSS, and
the server tree's total as PSS (`total_mb`), which counts a page shared by its processes
(libpython, libzmq and the other libraries each of them maps) once, not once per process
as a sum of RSS does (`rss_sum_mb`, about 120 MB more for afserver's eight processes).

The in-run reference (--reference SEC, bench/_echo.py): first, the same simulated renders
heartbeat for SEC seconds against the farm-shaped pyzmq echo (a ROUTER that gives each render
an id and answers each beat, and does nothing else); its CPU per message answered is the
denominator of `idle.server_cpu_us_per_heartbeat` (broker, scheduler and web CPU over the idle phase
over the heartbeats answered in it) and of `busy.server_cpu_us_per_task`: each has its
`ratio_to_reference`.

Prints one JSON line on stdout; logs go to stderr; exits 1 when something failed (errors
from the server, a task started twice, renders that did not come online), never for a
missed target.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# Run as `python bench/simfarm.py`, this file's folder is sys.path[0], where bench/broker.py
# would shadow the `broker` package: put the project root there instead, before importing it.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench import _echo  # noqa: E402
from bench._common import (  # noqa: E402
    MB,
    BenchError,
    afserver_env,
    ask,
    child,
    free_port,
    logs_on_failure,
    machine,
    numeric_job,
    pg_database,
    report,
    spawn,
    stop,
    wait_for,
)
from bench._simrenders import Engine, Samples, raise_fd_limit, sim_names  # noqa: E402
from broker import protocol as P  # noqa: E402
from broker.client import Client  # noqa: E402
from broker.replytimes import REPLY_BUCKETS_MS, bucket_percentile  # noqa: E402

log = logging.getLogger("bench.simfarm")

RENDERS_PER_PROC = 2500  # connections per simulator process (a descriptor each)
START_TIMEOUT = 30.0
WINDOW_SEC = 10.0  # heartbeat reply times of the busy phase, window by window

TARGETS = {
    "tasks_per_sec_1000_renders_min": 2000,
    "server_cpu_ms_per_task_max": 0.5,
    "heartbeat_p99_ms_10000_renders_max": 50,
    "jobs_per_sec_accepted_min": 1000,
    "rss_mb_1m_tasks_max": 300,
    "time_wait_server_side_max": 0,
    "postgresql_vs_sqlite_tasks_per_sec_min": 0.5,  # --postgresql: the same run on each store
}


def percentiles(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "n": len(ordered),
        "p50": round(pick(0.50) * 1000, 2),
        "p99": round(pick(0.99) * 1000, 2),
        "max": round(ordered[-1] * 1000, 2),
    }


def by_window(beats: list[tuple[float, float]], since: float, width: float) -> list[list[Any]]:
    """[seconds since `since`, p50, p99] of the reply times sent in each window: a whole
    phase's p99 does not say whether it was a steady tail or one burst (a wave of finals)."""
    windows: dict[int, list[float]] = {}
    for at, d in beats:
        if at >= since:
            windows.setdefault(int((at - since) // width), []).append(d)
    out = []
    for n, values in sorted(windows.items()):
        p = percentiles(values)
        out.append([round(n * width), p["p50"], p["p99"]])
    return out


# --- simulator processes ----------------------------------------------------------------


def engine_main(
    endpoint: str,
    names: list[str],
    first: int,
    options: dict[str, float],
    online: Any,
    started: Any,
    closed: Any,
    stop_event: Any,
    quiet: Any,
    results: Any,
) -> None:
    """One simulator process: its renders until told to stop, then its samples."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    raise_fd_limit()
    os.nice(int(options["nice"]))
    engine = Engine(endpoint, names, options["heartbeat"], options["task_seconds"], first)
    engine.start(time.monotonic())

    def look() -> bool:
        online.value = engine.online()
        started.value = engine.started_count
        closed.value = engine.samples.closes
        return stop_event.is_set()

    engine.run(float("inf"), look)
    # Every process stops acting on pushes before any render leaves: a task the server
    # moves from a leaving render to one in a process still running is not started twice.
    engine.closing = True
    with contextlib.suppress(threading.BrokenBarrierError):
        quiet.wait(timeout=10)
    engine.close(deregister=True)
    results.put(engine.samples)


class Simulators:
    """The simulator processes and the counters they share with this one."""

    def __init__(self, endpoint: str, renders: int, procs: int, options: dict[str, float]):
        ctx = mp.get_context("spawn")
        self.stop_event = ctx.Event()
        self.quiet = ctx.Barrier(procs)
        self.results: Any = ctx.Queue()
        self.online = [ctx.Value("q", 0, lock=False) for _ in range(procs)]
        self.started = [ctx.Value("q", 0, lock=False) for _ in range(procs)]
        self.closed = [ctx.Value("q", 0, lock=False) for _ in range(procs)]
        self.procs = []
        per = -(-renders // procs)
        for i in range(procs):
            first = i * per
            names = sim_names(min(per, renders - first), first)
            proc = ctx.Process(
                target=engine_main,
                args=(endpoint, names, first, options)
                + (self.online[i], self.started[i], self.closed[i])
                + (self.stop_event, self.quiet, self.results),
                daemon=True,
            )
            proc.start()
            self.procs.append(proc)

    def cpu(self) -> float:
        """CPU seconds of the simulator processes (they share the cores with the server)."""
        total = 0.0
        for proc in self.procs:
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(proc.pid).cpu_times()
                total += times.user + times.system
        return total

    def total(self, values: list[Any]) -> int:
        for proc in self.procs:
            if proc.exitcode not in (None, 0):
                raise BenchError(f"simulator process {proc.pid} exited with {proc.exitcode}")
        return sum(v.value for v in values)

    def finish(self, timeout: float = 60.0) -> Samples:
        self.stop_event.set()
        merged = Samples()
        for _ in self.procs:
            merged.merge(self.results.get(timeout=timeout))
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        return merged


# --- the server -------------------------------------------------------------------------


class Server:
    def __init__(
        self, tmp: Path, heartbeat: float, address: str | None, store_db: str = ""
    ) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if address:
            host, port = P.parse_server(address, 51000)
        else:
            host, port = "127.0.0.1", free_port()
            # the web runs as on a real server: its live feed is a monitor the scheduler
            # pushes every change (and renders' resources) to
            env = afserver_env(
                tmp,
                port,
                af_render_heartbeat_sec=heartbeat,
                af_web_port=free_port(),
                af_store_db=store_db,
            )
            self.proc = spawn(["-m", "workers.supervisor"], env, tmp / "afserver.log")
        self.port = port
        self.endpoint = P.endpoint(host, port)
        self.client = Client(self.endpoint, timeout=10.0)
        wait_for(lambda: self.stat(0.5), START_TIMEOUT, "afserver to answer stat")
        self.broker = child(self.proc.pid, "broker.broker") if self.proc else None
        self.scheduler = child(self.proc.pid, "workers.scheduler.main") if self.proc else None
        self.web = child(self.proc.pid, "web.main") if self.proc else None

    def stat(self, timeout: float = 10.0) -> dict[str, Any] | None:
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(f"afserver exited with code {self.proc.returncode}")
        reply = ask(self.client, {"get": {"type": "stat"}}, timeout=timeout)
        return reply["scheduler"] if reply else None

    def reply_counts(self, *msg_types: str) -> list[int]:
        """The broker's own counts for request types (summed): from reading a request to
        sending its reply, by bucket (the server's part, without the simulator's delays)."""
        stat = self.client.call(P.MsgType.BROKER_STAT, {}, timeout=10.0)
        counts = [0] * len(REPLY_BUCKETS_MS)
        for msg_type in msg_types:
            found = stat["broker"]["reply_ms"].get(msg_type)
            for i, n in enumerate(found["counts"] if found else ()):
                counts[i] += n
        return counts

    def cpu(self) -> dict[str, float]:
        out = {}
        for name, proc in (
            ("broker", self.broker),
            ("scheduler", self.scheduler),
            ("web", self.web),
        ):
            if proc is not None:
                times = proc.cpu_times()
                out[name] = times.user + times.system
        return out

    def rss(self) -> dict[str, float]:
        if self.proc is None or self.broker is None or self.scheduler is None:
            return {}
        tree = psutil.Process(self.proc.pid)
        total = rss_sum = 0
        for proc in [tree, *tree.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                memory = proc.memory_full_info()
                total += memory.pss
                rss_sum += memory.rss
        return {
            "broker_mb": round(self.broker.memory_info().rss / MB, 1),
            "scheduler_mb": round(self.scheduler.memory_info().rss / MB, 1),
            "total_mb": round(total / MB, 1),
            "rss_sum_mb": round(rss_sum / MB, 1),
        }

    def close(self) -> None:
        self.client.close()
        stop(self.proc, "afserver")


def reply_ms(before: list[int], after: list[int]) -> dict[str, Any]:
    """Reply times of one phase from two readings: percentiles are bucket bounds, ms."""
    period = [a - b for a, b in zip(after, before, strict=True)]
    return {
        "n": sum(period),
        "p50": bucket_percentile(period, 0.5),
        "p99": bucket_percentile(period, 0.99),
    }


def cpu_pct(before: dict[str, float], after: dict[str, float], secs: float) -> dict[str, float]:
    return {k: round((after[k] - before[k]) * 100 / max(secs, 1e-9), 1) for k in after}


# --- phases -----------------------------------------------------------------------------


def submit_all(endpoint: str, jobs: int, tasks: int, clients: int) -> dict[str, Any]:
    """`jobs` jobs of `tasks` tasks from `clients` concurrent clients (threads, one DEALER
    each: they wait on the socket, so they do not hold each other up)."""
    errors: list[str] = []

    def worker(k: int) -> None:
        with Client(endpoint, timeout=60.0) as client:
            for i in range(k, jobs, clients):
                try:
                    client.request(numeric_job(f"sim-{i:06d}", tasks), timeout=60.0)
                except Exception as exc:  # counted and reported; the run goes on
                    errors.append(f"job {i}: {exc}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    secs = time.monotonic() - began
    return {
        "jobs": jobs,
        "tasks": jobs * tasks,
        "clients": clients,
        "sec": round(secs, 3),
        "jobs_per_sec": round(jobs / secs, 1),
        "errors": errors[:5],
        "error_count": len(errors),
    }


def churn(endpoint: str, port: int, renders: int, cycles: int, heartbeat: float) -> dict[str, Any]:
    """Connect, register, heartbeat, deregister and close, `cycles` times; then TIME-WAIT."""
    for cycle in range(cycles):
        engine = Engine(endpoint, sim_names(renders, 0, prefix=f"churn{cycle}-"), heartbeat)
        engine.start(time.monotonic())
        deadline = time.monotonic() + START_TIMEOUT
        engine.run(deadline, lambda e=engine: all(r.beats >= 1 for r in e.renders))
        online = engine.online()
        engine.run(time.monotonic() + 0.5)  # the beat's reply
        engine.close(deregister=True)
        log.info("churn cycle %d: %d of %d renders went through", cycle + 1, online, renders)
    lines = subprocess.run(
        ["ss", "-Htan", "state", "time-wait"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    server = client = 0
    for line in lines:
        cols = line.split()
        if len(cols) >= 4:
            server += cols[2].endswith(f":{port}")
            client += cols[3].endswith(f":{port}")
    return {
        "renders": renders,
        "cycles": cycles,
        "time_wait_server_side": server,
        "time_wait_client_side": client,
    }


def reference(args: argparse.Namespace) -> dict[str, Any]:
    """The same renders against the farm-shaped echo: its CPU per message answered."""
    procs = args.procs or max(1, -(-args.renders // RENDERS_PER_PROC))
    options = {"heartbeat": args.heartbeat, "task_seconds": 0.0, "nice": args.sim_nice}
    with _echo.Echo("farm", free_port()) as echo:
        sims = Simulators(echo.endpoint, args.renders, procs, options)
        try:
            timeout = START_TIMEOUT + args.renders / 100
            wait_for(lambda: sims.total(sims.online) >= args.renders, timeout, "echo online")
            time.sleep(args.heartbeat * 2)
            before = echo.stat()
            time.sleep(args.reference)
            after = echo.stat()
        finally:
            sims.finish()
    return {"farm_echo": {"renders": args.renders, **_echo.per_message(before, after)}}


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"bench": "simfarm", "machine": machine(load=psutil.getloadavg())}
    out["options"] = {k: v for k, v in vars(args).items() if k != "server"}
    errors: list[str] = []
    if args.renders and args.reference > 0:
        out["reference"] = reference(args)
    ref = out.get("reference", {}).get("farm_echo", {}).get("cpu_us_per_message")
    out.update(farm_run(args, "", errors))
    add_ratios(out, ref)
    if args.postgresql:
        # the same farm on a PostgreSQL store, right after, against the same reference
        pg_errors: list[str] = []
        with pg_database(args.postgresql) as store_db:
            out["postgresql"] = farm_run(args, store_db, pg_errors)
        add_ratios(out["postgresql"], ref)
        errors += [f"postgresql: {e}" for e in pg_errors]
        out["postgresql_vs_sqlite"] = {
            "tasks_per_sec": _echo.ratio(
                out["postgresql"].get("busy", {}).get("tasks_per_sec"),
                out.get("busy", {}).get("tasks_per_sec"),
            ),
            "goal_min": TARGETS["postgresql_vs_sqlite_tasks_per_sec_min"],
        }
    out["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    out["errors"] = errors[:10]
    out["targets"] = TARGETS
    out["ok"] = not errors
    return out


def farm_run(args: argparse.Namespace, store_db: str, errors: list[str]) -> dict[str, Any]:
    """One server (on SQLite, or on the PostgreSQL database `store_db`) through the phases."""
    with tempfile.TemporaryDirectory(prefix="afbench-simfarm-") as tmp_name:
        tmp = Path(tmp_name)
        server = Server(tmp, args.heartbeat, args.server, store_db)
        with logs_on_failure(tmp, server.close, chars=3000):
            return {
                "store": "postgresql" if store_db else "sqlite",
                **measure(server, args, errors),
            }


def add_ratios(out: dict[str, Any], ref: float | None) -> None:
    """CPU per heartbeat and per task beside their ratio to the echo's CPU per message."""
    if "idle" in out:
        out["idle"]["ratio_to_reference"] = _echo.ratio(
            out["idle"].get("server_cpu_us_per_heartbeat"), ref
        )
    if "busy" in out:
        per_task = out["busy"].get("server_cpu_ms_per_task")
        out["busy"]["server_cpu_us_per_task"] = round(per_task * 1000, 1) if per_task else None
        out["busy"]["ratio_to_reference"] = _echo.ratio(out["busy"]["server_cpu_us_per_task"], ref)


def measure(server: Server, args: argparse.Namespace, errors: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    base = server.stat() or {}
    executors = base.get("renders_online", 0)
    total_tasks = args.jobs * args.tasks
    sims = None
    if args.renders:
        procs = args.procs or max(1, -(-args.renders // RENDERS_PER_PROC))
        options = {
            "heartbeat": args.heartbeat,
            "task_seconds": args.task_seconds,
            "nice": args.sim_nice,
        }
        began = time.monotonic()
        sims = Simulators(server.endpoint, args.renders, procs, options)
        timeout = START_TIMEOUT + args.renders / 100
        wait_for(lambda: sims.total(sims.online) >= args.renders, timeout, f"{args.renders} online")
        out["online_sec"] = round(time.monotonic() - began, 2)
        out["procs"] = procs
        time.sleep(args.heartbeat * 2)  # the last renders' first beats
    t_idle = time.time()
    replies_idle = server.reply_counts(*HEARTBEATS)
    cpu_idle = server.cpu()
    sim_idle = sims.cpu() if sims is not None else 0.0
    time.sleep(args.idle)  # the idle phase: nothing to wait for but the clock
    idle_secs = time.time() - t_idle
    cpu_idle_end = server.cpu()
    out["idle"] = {
        "sec": round(idle_secs, 2),
        "cpu_pct": cpu_pct(cpu_idle, cpu_idle_end, idle_secs),
    }
    replies_busy = server.reply_counts(*HEARTBEATS)
    answered = sum(replies_busy) - sum(replies_idle)
    idle_cpu = sum(cpu_idle_end[k] - cpu_idle[k] for k in cpu_idle_end)
    out["idle"]["heartbeats_answered"] = answered
    out["idle"]["server_cpu_us_per_heartbeat"] = (
        round(idle_cpu * 1e6 / answered, 1) if answered else None
    )
    if sims is not None:
        out["idle"]["simulator_cpu_pct"] = round((sims.cpu() - sim_idle) * 100 / idle_secs, 1)
        out["idle"]["server_heartbeat_ms"] = reply_ms(replies_idle, replies_busy)
    t_submit = time.time()
    cpu_busy = server.cpu()
    sim_cpu = sims.cpu() if sims is not None else 0.0
    if args.jobs:
        out["submit"] = submit_all(server.endpoint, args.jobs, args.tasks, args.clients)
        if out["submit"]["error_count"]:
            errors.append(f"{out['submit']['error_count']} submissions failed")
    t_submitted = time.time()
    rss_max: dict[str, float] = {}
    if sims is not None and total_tasks:
        deadline = time.monotonic() + args.duration
        while time.monotonic() < deadline and sims.total(sims.closed) < total_tasks:
            for k, v in server.rss().items():
                rss_max[k] = max(rss_max.get(k, 0.0), v)
            time.sleep(0.2)
    busy_secs = time.time() - t_submit
    cpu_end = server.cpu()
    sim_cpu = (sims.cpu() - sim_cpu) if sims is not None else 0.0
    stat = server.stat() or {}
    replies_end = server.reply_counts(*HEARTBEATS)
    rss_end = server.rss()
    for k, v in rss_end.items():
        rss_max[k] = max(rss_max.get(k, 0.0), v)
    out["renders"] = args.renders
    out["renders_online"] = stat.get("renders_online", 0) - executors
    out["zombies"] = stat.get("zombies", 0) - base.get("zombies", 0)
    out["rss_end"] = rss_end
    out["rss_max"] = rss_max
    if sims is not None:
        samples = sims.finish()
        out.update(figures(samples, t_idle, t_submit, t_submitted, total_tasks))
        busy_cpu = sum(cpu_end[k] - cpu_busy[k] for k in cpu_end)
        out["busy"]["cpu_pct"] = cpu_pct(cpu_busy, cpu_end, busy_secs)
        out["busy"]["simulator_cpu_pct"] = round(sim_cpu * 100 / busy_secs, 1)
        if total_tasks:
            out["busy"]["server_heartbeat_ms"] = reply_ms(replies_busy, replies_end)
        out["busy"]["server_cpu_ms_per_task"] = (
            round(busy_cpu * 1000 / len(samples.starts), 4) if samples.starts else None
        )
        if samples.errors:
            errors.append(f"{len(samples.errors)} errors from the server: {samples.errors[:3]}")
        if out["tasks_started_twice"]:
            errors.append(f"{out['tasks_started_twice']} tasks started more than once")
    if args.churn:
        out["churn"] = churn(
            server.endpoint, server.port, args.churn_renders, args.churn, args.heartbeat
        )
    return out


def figures(
    s: Samples, t_idle: float, t_submit: float, t_submitted: float, total: int
) -> dict[str, Any]:
    keys = [k[:3] for k in s.starts]
    distinct = set(keys)
    starts_at = sorted(at for _, at in s.dispatch)
    window = starts_at[-1] - starts_at[0] if len(starts_at) > 1 else 0.0
    idle_beats = [d for at, d in s.heartbeats if t_idle <= at < t_submit]
    busy_beats = [d for at, d in s.heartbeats if at >= t_submit]
    latency = [at - max(ready, t_submitted) for ready, at in s.dispatch if at >= t_submitted]
    return {
        "registration_ms": percentiles([d for _, d in s.registrations]),
        "heartbeat_ms": {
            "idle": percentiles(idle_beats),
            "busy": percentiles(busy_beats),
            "busy_by_10s": by_window(s.heartbeats, t_submit, WINDOW_SEC),
        },
        "busy": {
            "tasks_total": total,
            "tasks_started": len(s.starts),
            "tasks_closed": s.closes,
            "dispatch_sec": round(window, 3),
            "tasks_per_sec": round(len(s.starts) / window, 1) if window else None,
            "dispatch_latency_ms": percentiles(latency),
        },
        "tasks_started_twice": len(keys) - len(distinct),
        "server_errors": len(s.errors),
        "reregistered": s.reregistered,
        "silences": s.silences,
        "beats_held": s.beats_held,
        "shed": s.shed,
        "stops": s.stops,
        "send_failures": s.send_failures,
        "reconnects": s.reconnects,
    }


HEARTBEATS = ("RENDER_BEAT", "RENDER_UPDATE")  # an idle beat, a beat with task reports


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=1000, help="simulated renders")
    parser.add_argument("--heartbeat", type=float, default=1.0, help="heartbeat seconds")
    parser.add_argument("--task-seconds", type=float, default=0.0, help="simulated task time")
    parser.add_argument("--jobs", type=int, default=100, help="jobs to submit")
    parser.add_argument("--tasks", type=int, default=100, help="tasks per job")
    parser.add_argument("--clients", type=int, default=4, help="concurrent submitting clients")
    parser.add_argument("--idle", type=float, default=5.0, help="idle phase seconds")
    parser.add_argument(
        "--reference", type=float, default=5.0, help="seconds against the farm echo (0: none)"
    )
    parser.add_argument("--duration", type=float, default=120.0, help="busy phase limit, s")
    parser.add_argument("--procs", type=int, default=0, help="simulator processes (0: auto)")
    parser.add_argument("--server", default=None, help="HOST:PORT of a running afserver")
    parser.add_argument(
        "--postgresql",
        default="",
        help="then the same farm on a PostgreSQL store: a server's connection string without "
        'dbname ("host=127.0.0.1 user=postgres"), where a fresh af_pg_bench_* database is made',
    )
    parser.add_argument("--churn", type=int, default=0, help="connect/disconnect cycles")
    parser.add_argument("--churn-renders", type=int, default=1000, help="renders per cycle")
    parser.add_argument(
        "--sim-nice",
        type=int,
        default=0,
        help="niceness of the simulator processes: >0 lets the server have the cores first, "
        "as on a farm where the renders are other hosts",
    )
    args = parser.parse_args(argv)
    if min(args.renders, args.jobs, args.tasks, args.churn) < 0 or args.heartbeat <= 0:
        parser.error("counts must be >= 0 and --heartbeat > 0")
    if args.postgresql and args.server:
        parser.error("--postgresql starts its own servers: not with --server")
    if args.clients < 1 or args.jobs and args.tasks < 1:
        parser.error("--clients and --tasks must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    raise_fd_limit()
    report(lambda: run(args))


if __name__ == "__main__":
    main()
