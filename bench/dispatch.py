"""Task dispatch through real afrender processes, and scheduler memory per unstarted task.

Dispatch: a fresh afserver and K afrender processes on loopback (K = 1 and 10 by default),
one job of N tasks whose command is `true`, wall time from the submission until the job
summary says every task is done. A `true` task costs almost nothing, so the time per task
is the farm's own overhead: solve, push the start, fork the shell, notice the exit, report,
refill the slot. CPU is read per process with psutil as a delta over the run.

The bench polls the job summary every POLL_SEC, which the server pays for too: after each
run the farm is polled at the same pace for POLL_COST_SEC with nothing else to do, and the
share so estimated is reported as poll_server_cpu_ms_per_task. It is included in
server_cpu_ms_per_task (the number checked against the target); the difference is
server_cpu_ms_per_task_ex_polls. psutil reads CPU in 10 ms ticks: small numbers are coarse.

Memory: a fresh afserver without renders, the scheduler's RSS when idle, then after 10 jobs
of 1,000 and after 10 jobs of 10,000 unstarted tasks. Both steps add 10 jobs, so their
difference (marginal_bytes_per_task) is the cost of a task without the jobs'. RSS moves by
pages and allocator arenas: the small step (~0.3 MB expected) is within that noise, the big
one is good to a few bytes per task.

CURVE: the same K=10 dispatch on a farm with af_auth = curve (every render and the client
with a key, the broker checking each message's proven name) and on one without, alternated
for --curve-rounds rounds in this run; the best rate of each is compared (curve_rate_ratio,
the target), and the median CPU per task of every farm process (curve_cpu_rate_ratio: the
rate an otherwise idle machine would reach, steadier where others share the cores).

Prints one JSON line on stdout; logs go to stderr; exits 1 when something failed (a job not
done within its deadline, a process that did not come up), never for a missed target.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

# Run as `python bench/dispatch.py`, this file's folder is sys.path[0], where bench/broker.py
# would shadow the `broker` package: put the project root there instead, before importing it.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from auth import keys as K  # noqa: E402
from auth.curve import ClientKeys  # noqa: E402
from bench import _echo  # noqa: E402
from bench._common import (  # noqa: E402
    MB,
    POLL_SEC,
    BenchError,
    afserver_env,
    ask,
    child,
    free_port,
    guarded,
    logs_on_failure,
    machine,
    report,
    settled_rss,
    spawn,
    stop,
    stop_all,
    submit,
    submit_many,
    wait_for,
)
from broker import protocol as P  # noqa: E402
from broker.client import Client  # noqa: E402

log = logging.getLogger("bench.dispatch")

START_TIMEOUT = 20.0  # afserver answering, K renders online
RSS_SETTLE_TIMEOUT = 15.0
POLL_COST_SEC = 2.0  # polling an idle farm this long prices one poll (CPU ticks are 10 ms)
MEMORY_JOBS = 10
SMALL_MEMORY_TASKS = 1_000

TARGETS = {
    "slot_seconds_per_task_k1_max": 0.05,
    "tasks_per_sec_k10_min": 100,
    "server_cpu_ms_per_task_max": 0.9,
    "rss_bytes_per_unstarted_task_max": 300,
    "curve_rate_ratio_min": 0.9,
}
ORIGINAL = {
    "tasks_per_sec_k1": 0.5,
    "tasks_per_sec_k10": 4.9,
    "slot_seconds_per_task": 2.0,
    "server_cpu_ms_per_task": 0.9,
    "rss_bytes_per_unstarted_task": 582,
}


@dataclass
class Farm:
    """One afserver and its renders in a temp dir with their own config, store and HOME."""

    tmp: Path
    port: int = field(default_factory=free_port)
    server: subprocess.Popen[bytes] | None = None
    renders: list[subprocess.Popen[bytes]] = field(default_factory=list)
    client: Client | None = None
    curve: bool = False
    keys: ClientKeys | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        settings: dict[str, Any] = {"af_render_heartbeat_sec": 1, **self.settings}
        if self.curve:  # one admin key, in HOME/.afanasy where afrender looks by default
            settings.update(af_auth="curve", af_admins=["bench"])
        self.env = afserver_env(self.tmp, self.port, **settings)
        if self.curve:
            secret = K.create_client(self.tmp / "store" / "keys", "bench", self.tmp / ".afanasy")
            own, server = K.client_keys(secret, self.tmp / ".afanasy" / K.SERVER_PUBLIC)
            self.keys = ClientKeys(own, server)

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        return spawn(argv, self.env, self.tmp / f"{name}.log")

    def start_server(self) -> None:
        """afserver, then wait for a REPLY to stat: it proves broker and scheduler are up."""
        self.server = self.spawn("afserver", ["-m", "workers.supervisor"])
        self.client = Client(P.endpoint("127.0.0.1", self.port), timeout=5.0, curve=self.keys)
        wait_for(self._stat, START_TIMEOUT, "afserver to answer stat")

    def _stat(self) -> Any:
        assert self.server is not None and self.client is not None
        if self.server.poll() is not None:
            raise BenchError(f"afserver exited with code {self.server.returncode}")
        return ask(self.client, {"get": {"type": "stat"}}, timeout=0.5)

    def start_renders(self, count: int) -> list[str]:
        """`count` afrenders with distinct names; returns once all of them are online."""
        names = [f"bench{i:02d}" for i in range(count)]
        for name in names:
            self.renders.append(self.spawn(f"render-{name}", ["-m", "render.main", "--name", name]))
        wait_for(
            lambda: self._online() >= set(names), START_TIMEOUT, f"{count} renders to be online"
        )
        return names

    def _online(self) -> set[str]:
        assert self.client is not None
        for proc in self.renders:
            if proc.poll() is not None:
                raise BenchError(f"afrender {proc.pid} exited with code {proc.returncode}")
        reply = ask(self.client, {"get": {"type": "renders"}}, timeout=1.0)
        return {r["name"] for r in (reply or {}).get("renders", []) if r.get("online")}

    def child(self, module: str) -> psutil.Process:
        assert self.server is not None
        return child(self.server.pid, module)

    def stop(self) -> None:
        """Renders first (they deregister through the server), then the server itself."""
        if self.client is not None:
            self.client.close()
            self.client = None
        stop_all(self.renders, "afrender")
        stop(self.server, "afserver")


@contextlib.contextmanager
def farm_in(tmp_root: Path, name: str, curve: bool = False, **settings: Any) -> Iterator[Farm]:
    """A farm that is always stopped, with its logs on stderr when the run failed."""
    tmp = tmp_root / name
    tmp.mkdir()
    farm = Farm(tmp, curve=curve, settings=settings)
    with logs_on_failure(tmp, farm.stop, chars=2000):
        farm.start_server()
        yield farm


# --- measuring --------------------------------------------------------------------------


def cpu_sec(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def children_cpu_sec(proc: psutil.Process) -> float:
    """CPU of the reaped children: for a render, the shells of its finished tasks."""
    times = proc.cpu_times()
    return times.children_user + times.children_system


def tree_rss(pid: int) -> int:
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


@dataclass
class CpuSnapshot:
    """CPU seconds of the processes a dispatch run is charged to."""

    broker: float
    scheduler: float
    renders: float
    tasks: float

    @classmethod
    def take(
        cls, broker: psutil.Process, scheduler: psutil.Process, renders: list[int]
    ) -> CpuSnapshot:
        procs = [psutil.Process(pid) for pid in renders]
        return cls(
            cpu_sec(broker),
            cpu_sec(scheduler),
            sum(cpu_sec(p) for p in procs),
            sum(children_cpu_sec(p) for p in procs),
        )

    def minus(self, other: CpuSnapshot) -> CpuSnapshot:
        return CpuSnapshot(
            self.broker - other.broker,
            self.scheduler - other.scheduler,
            self.renders - other.renders,
            self.tasks - other.tasks,
        )


def summary(client: Client, job_id: int) -> dict[str, Any]:
    body = {"get": {"type": "jobs", "ids": [job_id], "mode": "list"}}
    return client.request(body)["jobs"][0]


def wait_done(client: Client, job_id: int, tasks: int, timeout: float) -> tuple[int, int]:
    """Poll the summary until every task is done; returns (polls, task errors seen)."""
    deadline = time.monotonic() + timeout
    polls = 0
    while True:
        job = summary(client, job_id)
        polls += 1
        if job["tasks_done"] >= tasks:
            return polls, job["tasks_error"]
        if time.monotonic() >= deadline:
            raise BenchError(
                f"job {job_id}: {job['tasks_done']} of {tasks} tasks done after {timeout:g} s "
                f"(state {job['state']}, running {job['tasks_running']}, errors "
                f"{job['tasks_error']})"
            )
        time.sleep(POLL_SEC)


def poll_cost_ms(
    client: Client, job_id: int, broker: psutil.Process, scheduler: psutil.Process
) -> float:
    """Server CPU per summary poll at the run's own pace, on the farm with nothing to do.

    Paced like wait_done, not back to back: a lone request wakes the broker and the
    scheduler each time and costs several times what one in a burst does. The window also
    carries the idle farm (heartbeats), a few ms per second, charged to the polls here."""
    before = cpu_sec(broker) + cpu_sec(scheduler)
    end = time.monotonic() + POLL_COST_SEC
    polls = 0
    while time.monotonic() < end:
        summary(client, job_id)
        polls += 1
        time.sleep(POLL_SEC)
    return (cpu_sec(broker) + cpu_sec(scheduler) - before) * 1000 / polls


def per_task(seconds: float, tasks: int) -> float:
    return round(seconds * 1000 / tasks, 4)


def dispatch_run(
    tmp_root: Path, renders: int, tasks: int, timeout: float, curve: bool = False, tag: str = ""
) -> dict[str, Any]:
    """One fresh farm with `renders` renders, one job of `tasks` true tasks, timed to done."""
    with farm_in(tmp_root, f"k{renders}{tag}", curve) as farm:
        assert farm.client is not None and farm.server is not None
        farm.start_renders(renders)
        broker = farm.child("broker.broker")
        scheduler = farm.child("workers.scheduler.main")
        render_pids = [p.pid for p in farm.renders]
        log.info("K=%d: %d renders online, submitting %d tasks", renders, renders, tasks)
        before = CpuSnapshot.take(broker, scheduler, render_pids)
        started = time.monotonic()
        job_id = submit(farm.client, f"dispatch-k{renders}", tasks)
        polls, errors = wait_done(farm.client, job_id, tasks, timeout)
        wall = time.monotonic() - started
        used = CpuSnapshot.take(broker, scheduler, render_pids).minus(before)
        server_rss = tree_rss(farm.server.pid)
        render_rss = sum(tree_rss(pid) for pid in render_pids)
        poll_ms = poll_cost_ms(farm.client, job_id, broker, scheduler)
    return {
        "renders": renders,
        "tasks": tasks,
        "curve": curve,
        "wall_sec": round(wall, 3),
        "tasks_per_sec": round(tasks / wall, 1),
        "slot_seconds_per_task": round(wall * renders / tasks, 4),
        "server_cpu_ms_per_task": per_task(used.broker + used.scheduler, tasks),
        "broker_cpu_ms_per_task": per_task(used.broker, tasks),
        "scheduler_cpu_ms_per_task": per_task(used.scheduler, tasks),
        "render_cpu_ms_per_task": per_task(used.renders, tasks),
        "task_shell_cpu_ms_per_task": per_task(used.tasks, tasks),
        "server_rss_mb": round(server_rss / MB, 1),
        "render_rss_mb": round(render_rss / MB, 1),
        "polls": polls,
        "poll_server_cpu_ms_per_task": round(polls * poll_ms / tasks, 4),
        "server_cpu_ms_per_task_ex_polls": per_task(
            max(0.0, used.broker + used.scheduler - polls * poll_ms / 1000), tasks
        ),
        "task_errors": errors,
    }


def memory_run(tmp_root: Path, tasks_per_job: int, small_first: bool) -> dict[str, Any]:
    """Scheduler RSS growth for MEMORY_JOBS jobs of unstarted tasks on a farm with no renders."""
    with farm_in(tmp_root, "memory") as farm:
        assert farm.client is not None
        scheduler = farm.child("workers.scheduler.main")
        start = settled_rss(scheduler, RSS_SETTLE_TIMEOUT)
        small = None
        before = start
        if small_first:
            submit_many(farm.client, "small-", MEMORY_JOBS, SMALL_MEMORY_TASKS)
            before = settled_rss(scheduler, RSS_SETTLE_TIMEOUT)
            small = before - start
        log.info("memory: submitting %d jobs x %d tasks", MEMORY_JOBS, tasks_per_job)
        submit_many(farm.client, "big-", MEMORY_JOBS, tasks_per_job)
        after = settled_rss(scheduler, RSS_SETTLE_TIMEOUT)
    total = MEMORY_JOBS * tasks_per_job
    out: dict[str, Any] = {
        "tasks": total,
        "rss_before_mb": round(before / MB, 2),
        "rss_after_mb": round(after / MB, 2),
        "rss_growth_bytes_per_task": round((after - before) / total, 1),
    }
    if small is not None and total > MEMORY_JOBS * SMALL_MEMORY_TASKS:
        # Both steps add MEMORY_JOBS jobs, so their difference is tasks alone. What is left
        # for the jobs is within RSS noise (arenas are reused), hence no per-job figure.
        small_total = MEMORY_JOBS * SMALL_MEMORY_TASKS
        out["small"] = {
            "tasks": small_total,
            "rss_growth_bytes_per_task": round(small / small_total, 1),
        }
        out["marginal_bytes_per_task"] = round((after - before - small) / (total - small_total), 1)
    return out


# --- the run ----------------------------------------------------------------------------


def curve_comparison(tmp: Path, args: argparse.Namespace, errors: list[str]) -> dict[str, Any]:
    """K=10 with CURVE off and on, alternated; the best rate of each side is compared."""
    k, tasks = 10, args.tasks_for(10)
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for i in range(args.curve_rounds):
        for side in ("off", "on"):
            result = guarded(
                f"K={k} curve {side} #{i + 1}",
                errors,
                partial(dispatch_run, tmp, k, tasks, args.job_timeout, side == "on", f"-{side}{i}"),
            )
            runs[side].append(result)
    best = {
        side: max((r["tasks_per_sec"] for r in results if "tasks_per_sec" in r), default=None)
        for side, results in runs.items()
    }
    off, on = best["off"], best["on"]
    # CPU per task of every farm process (polls left out) is what the rate comes from on
    # an idle machine, and moves far less than wall time on a shared one
    cpu = {
        side: statistics.median(
            [
                r["server_cpu_ms_per_task_ex_polls"]
                + r["render_cpu_ms_per_task"]
                + r["task_shell_cpu_ms_per_task"]
                for r in results
                if "wall_sec" in r
            ]
            or [0.0]
        )
        for side, results in runs.items()
    }
    return {
        "renders": k,
        "tasks": tasks,
        "rounds": args.curve_rounds,
        "tasks_per_sec_off": [r.get("tasks_per_sec") for r in runs["off"]],
        "tasks_per_sec_on": [r.get("tasks_per_sec") for r in runs["on"]],
        "broker_cpu_ms_per_task_off": [r.get("broker_cpu_ms_per_task") for r in runs["off"]],
        "broker_cpu_ms_per_task_on": [r.get("broker_cpu_ms_per_task") for r in runs["on"]],
        "server_cpu_ms_per_task_ex_polls_off": [
            r.get("server_cpu_ms_per_task_ex_polls") for r in runs["off"]
        ],
        "server_cpu_ms_per_task_ex_polls_on": [
            r.get("server_cpu_ms_per_task_ex_polls") for r in runs["on"]
        ],
        "farm_cpu_ms_per_task_off": round(cpu["off"], 3),
        "farm_cpu_ms_per_task_on": round(cpu["on"], 3),
        "curve_cpu_rate_ratio": round(cpu["off"] / cpu["on"], 3) if cpu["on"] else None,
        "curve_rate_ratio": round(on / off, 3) if on and off else None,
    }


def targets_met(
    results: list[dict[str, Any]], memory: dict[str, Any] | None, curve: dict[str, Any] | None
) -> dict[str, Any]:
    """Per target True/False, or None when the run that decides it was not made or failed."""
    by_k = {r["renders"]: r for r in results if "wall_sec" in r}
    k1, k10 = by_k.get(1), by_k.get(10)
    cpu = [r["server_cpu_ms_per_task"] for r in by_k.values()]
    rss = (memory or {}).get("rss_growth_bytes_per_task")
    return {
        "slot_seconds_per_task_k1": k1["slot_seconds_per_task"]
        <= TARGETS["slot_seconds_per_task_k1_max"]
        if k1
        else None,
        "tasks_per_sec_k10": k10["tasks_per_sec"] >= TARGETS["tasks_per_sec_k10_min"]
        if k10
        else None,
        "server_cpu_ms_per_task": max(cpu) <= TARGETS["server_cpu_ms_per_task_max"]
        if cpu
        else None,
        "rss_bytes_per_unstarted_task": rss <= TARGETS["rss_bytes_per_unstarted_task_max"]
        if rss is not None
        else None,
        "curve_rate_ratio": (curve or {}).get("curve_rate_ratio", 0)
        >= TARGETS["curve_rate_ratio_min"]
        if (curve or {}).get("curve_rate_ratio") is not None
        else None,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Each phase on a fresh farm; a failed phase is reported and the others still run."""
    results: list[dict[str, Any]] = []
    memory: dict[str, Any] | None = None
    errors: list[str] = []
    ref = _echo.reference(2.0, 1)["raw_echo"]
    with tempfile.TemporaryDirectory(prefix="afbench-dispatch-") as tmp_name:
        tmp = Path(tmp_name)
        for k in args.counts:
            tasks = args.tasks_for(k)
            result = guarded(
                f"K={k}", errors, partial(dispatch_run, tmp, k, tasks, args.job_timeout)
            )
            if "error" in result:
                result = {"renders": k, "tasks": tasks, **result}
            else:
                result["server_cpu_ratio_to_reference"] = _echo.ratio(
                    result["server_cpu_ms_per_task"] * 1000, ref["cpu_us_per_message"]
                )
            results.append(result)
        if not args.skip_memory:
            memory = guarded(
                "memory", errors, lambda: memory_run(tmp, args.memory_tasks, not args.no_small)
            )
        curve = curve_comparison(tmp, args, errors) if args.curve_rounds > 0 else None
    out: dict[str, Any] = {
        "bench": "dispatch",
        "machine": machine(platform=platform.platform()),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "reference": ref,
        "results": results,
        "memory": memory,
        "curve": curve,
        "targets": TARGETS,
        "targets_met": targets_met(results, memory, curve),
        "original": ORIGINAL,
        "ok": not errors,
    }
    if errors:
        out["errors"] = errors
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", default="1,10", help="comma-separated afrender counts K")
    parser.add_argument("--tasks-k1", type=int, default=200, help="tasks in the K=1 job")
    parser.add_argument("--tasks-k10", type=int, default=1000, help="tasks in the K=10 job")
    parser.add_argument(
        "--tasks",
        default="",
        help="K:N pairs overriding the above, e.g. '1:100,4:400'; other K get 100*K",
    )
    parser.add_argument("--job-timeout", type=float, default=60.0, help="deadline per job, s")
    parser.add_argument("--memory-tasks", type=int, default=10_000, help="tasks per memory job")
    parser.add_argument("--skip-memory", action="store_true", help="no memory measurement")
    parser.add_argument(
        "--curve-rounds", type=int, default=3, help="K=10 CURVE off/on pairs (0: none)"
    )
    parser.add_argument(
        "--no-small", action="store_true", help="skip the 10 x 1,000 step before the big one"
    )
    args = parser.parse_args(argv)
    try:
        args.counts = [int(x) for x in args.renders.split(",") if x.strip()]
        mapping = {1: args.tasks_k1, 10: args.tasks_k10}
        for pair in filter(None, (p.strip() for p in args.tasks.split(","))):
            k, n = pair.split(":")
            mapping[int(k)] = int(n)
    except ValueError:
        parser.error("--renders takes integers and --tasks K:N pairs")
    if not args.counts or min(args.counts) < 1 or min(mapping.values()) < 1:
        parser.error("render and task counts must be positive")
    if args.memory_tasks < 1 or args.job_timeout <= 0 or args.curve_rounds < 0:
        parser.error("--memory-tasks and --job-timeout must be positive")
    args.tasks_for = lambda k: mapping.get(k, 100 * k)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report(lambda: run(args))


if __name__ == "__main__":
    main()
