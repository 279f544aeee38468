"""Jobs submitted per second through the gateway, as the original's clients submit them.

A fresh afserver with its gateway on loopback and no renders (the jobs stay unstarted: this
measures submission, not dispatch). C client processes (C = 1 and 4 by default) each send
their share of N jobs, one TCP connection per job in the AFANASY framing, reading each reply
before the next, closing first as the original's Python API does. Each job is the original's
kind of small submission: one numeric block of 10 frames. jobs_per_sec is N over the wall
time from the first connection to the last reply. For scale, the same N jobs are also sent
by one client straight to the broker (our own protocol, one persistent connection):
direct_jobs_per_sec. Then the same clients send N light requests (``get users``, which
costs the scheduler next to nothing): light.requests_per_sec is what the gateway itself
carries. CPU seconds per process (gateway, broker, scheduler) come from psutil
over each run, and the TIME-WAIT sockets left on the gateway's side are counted after it.

Prints one JSON line on stdout; logs go to stderr; exits 1 when something failed (a
submission refused, a process that did not come up), never for a missed target.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

# Run as `python bench/gateway.py`, this file's folder is sys.path[0], where bench/broker.py
# would shadow the `broker` package: put the project root there instead, before importing it.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench._common import (  # noqa: E402
    BenchError,
    afserver_env,
    ask,
    child,
    free_port,
    guarded,
    logs_on_failure,
    machine,
    numeric_job,
    report,
    spawn,
    stop,
    wait_for,
)
from broker import protocol as P  # noqa: E402
from broker.client import Client  # noqa: E402
from gateway.client import send  # noqa: E402

log = logging.getLogger("bench.gateway")

START_TIMEOUT = 20.0
TASKS_PER_JOB = 10
ORIGINAL = {"jobs_per_sec": "600-810 (the original server, same machine kind, its own figure)"}
PROCESSES = {
    "gateway": "gateway.main",
    "broker": "broker.broker",
    "scheduler": "workers.scheduler.main",
}


def job(name: str) -> dict[str, Any]:
    body = numeric_job(name, TASKS_PER_JOB)
    body["job"].update(user_name="bench", host_name="benchhost")
    return body


LIGHT = {"get": {"type": "users"}}


def client_run(port: int, prefix: str, jobs: int, light: bool) -> tuple[float, float, int]:
    """One client process: `jobs` submissions (or light requests), one connection each.
    (start, end, refused)."""
    refused = 0
    started = time.monotonic()
    for i in range(jobs):
        reply = send(port, LIGHT if light else job(f"{prefix}{i}"), timeout=30.0)
        if not reply.get("users" if light else "id"):
            refused += 1
    return started, time.monotonic(), refused


def cpu_of(procs: dict[str, psutil.Process]) -> dict[str, float]:
    return {name: sum(proc.cpu_times()[:2]) for name, proc in procs.items()}


def server_time_waits(port: int) -> int:
    return sum(
        1
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_TIME_WAIT and c.laddr and c.laddr.port == port
    )


def gateway_run(
    port: int, procs: dict[str, psutil.Process], clients: int, jobs: int, light: bool = False
) -> dict[str, Any]:
    per_client = jobs // clients
    before = cpu_of(procs)
    with ProcessPoolExecutor(clients) as pool:
        futures = [
            pool.submit(client_run, port, f"c{clients}x{c}-", per_client, light)
            for c in range(clients)
        ]
        results = [f.result() for f in futures]
    after = cpu_of(procs)
    wall = max(r[1] for r in results) - min(r[0] for r in results)
    refused = sum(r[2] for r in results)
    if refused:
        raise BenchError(f"{refused} submissions refused")
    total = per_client * clients
    what = "requests" if light else "jobs"
    return {
        "clients": clients,
        what: total,
        "wall_sec": round(wall, 3),
        f"{what}_per_sec": round(total / wall, 1),
        f"cpu_ms_per_{what[:-1]}": {
            k: round(1000 * (after[k] - before[k]) / total, 3) for k in procs
        },
        "server_time_wait_sockets": server_time_waits(port),
    }


def direct_run(client: Client, jobs: int) -> dict[str, Any]:
    started = time.monotonic()
    for i in range(jobs):
        client.request(job(f"direct{i}"), timeout=30.0)
    wall = time.monotonic() - started
    return {"clients": 1, "jobs": jobs, "jobs_per_sec": round(jobs / wall, 1)}


@contextlib.contextmanager
def fresh_farm(
    tmp_root: Path, name: str
) -> Iterator[tuple[int, Client, dict[str, psutil.Process]]]:
    """An afserver with its gateway in its own folder: (gateway port, client, processes)."""
    tmp = tmp_root / name
    tmp.mkdir()
    port, gateway_port = free_port(), free_port()
    env = afserver_env(tmp, port, af_gateway_port=gateway_port)
    server = spawn(["-m", "workers.supervisor"], env, tmp / "afserver.log")
    client = Client(P.endpoint("127.0.0.1", port), timeout=5.0)

    def close() -> None:
        client.close()
        stop(server, "afserver")

    with logs_on_failure(tmp, close, chars=3000):
        wait_for(lambda: ask(client, {"get": {"type": "stat"}}, 0.5), START_TIMEOUT, "afserver")
        wait_for(lambda: _gateway_up(gateway_port), START_TIMEOUT, "the gateway to answer")
        yield gateway_port, client, {n: child(server.pid, m) for n, m in PROCESSES.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Each run on a fresh farm, so every run starts from the same number of jobs (none)."""
    errors: list[str] = []
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="afbench-gateway-") as tmp_name:
        tmp = Path(tmp_name)
        for clients in args.counts:

            def measure(c: int = clients) -> dict[str, Any]:
                with fresh_farm(tmp, f"c{c}") as (port, _, procs):
                    submitted = gateway_run(port, procs, c, args.jobs)
                    light = gateway_run(port, procs, c, args.jobs, light=True)
                    return {**submitted, "light": light}

            results.append({"clients": clients, **guarded(f"C={clients}", errors, measure)})

        def measure_direct() -> dict[str, Any]:
            with fresh_farm(tmp, "direct") as (_, client, _procs):
                return direct_run(client, args.jobs)

        direct = guarded("direct", errors, measure_direct)
    out: dict[str, Any] = {
        "bench": "gateway",
        "machine": machine(platform=platform.platform()),
        "tasks_per_job": TASKS_PER_JOB,
        "results": results,
        "direct": direct,
        "original": ORIGINAL,
        "ok": not errors,
    }
    if errors:
        out["errors"] = errors
    return out


def _gateway_up(port: int) -> bool:
    try:
        return "users" in send(port, {"get": {"type": "users"}}, timeout=1.0)
    except OSError:
        return False
    except Exception:  # the gateway answering but not yet reaching the scheduler
        return False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,4", help="comma-separated client counts C")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per run (N)")
    args = parser.parse_args(argv)
    try:
        args.counts = [int(x) for x in args.clients.split(",") if x.strip()]
    except ValueError:
        parser.error("--clients takes integers")
    if not args.counts or min(args.counts) < 1 or args.jobs < max(args.counts):
        parser.error("client counts must be positive and --jobs at least the largest")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report(lambda: run(args))


if __name__ == "__main__":
    main()
