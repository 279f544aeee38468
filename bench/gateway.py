"""Jobs submitted per second through the gateway, as the original's clients submit them.

A fresh afserver with its gateway on loopback and no renders (the jobs stay unstarted: this
measures submission, not dispatch). C client processes (C = 1 and 4 by default) each send
their share of N jobs, one TCP connection per job in the AFANASY framing, reading each reply
before the next, closing first as the original's Python API does. Each job is the original's
kind of small submission: one numeric block of 10 frames. jobs_per_sec is N over the wall
time from the first connection to the last reply. For scale, the same N jobs are also sent
by one client straight to the broker (our own protocol, one persistent connection):
native (C clients, each on one persistent connection of our protocol). Latency p50 is per
submission, connect to reply. Then the same clients send N light requests (``get users``, which
costs the scheduler next to nothing): light.requests_per_sec is what the gateway itself
carries. CPU seconds per process (gateway, broker, scheduler) come from psutil
over each run, and the TIME-WAIT sockets left on the gateway's side are counted after it.
The in-run reference (bench/_echo.py): the raw pyzmq echo's round trips and CPU per message
with 1 and C identities, measured in the same run; each CPU figure has its ratio to it.

Prints one JSON line on stdout; logs go to stderr; exits 1 when something failed (a
submission refused, a process that did not come up), never for a missed target.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
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

from bench import _echo  # noqa: E402
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
ORIGINAL = {  # measured side by side on this machine kind (issue 22), through af.py
    "jobs_per_sec_1_client": 418,
    "jobs_per_sec_4_clients": 482,
    "latency_p50_ms_1_client": 1.8,
}
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


Run = tuple[float, float, int, list[float]]  # start, end, refused, latencies (s)


def client_run(port: int, prefix: str, jobs: int, light: bool) -> Run:
    """One client process: `jobs` submissions (or light requests), one connection each."""
    refused = 0
    latencies = []
    started = time.monotonic()
    for i in range(jobs):
        began = time.perf_counter()
        reply = send(port, LIGHT if light else job(f"{prefix}{i}"), timeout=30.0)
        latencies.append(time.perf_counter() - began)
        if not reply.get("users" if light else "id"):
            refused += 1
    return started, time.monotonic(), refused, latencies


def native_run(port: int, prefix: str, jobs: int, light: bool) -> Run:
    """One client process on our own protocol: one persistent connection to the broker."""
    client = Client(P.endpoint("127.0.0.1", port), timeout=30.0)
    latencies = []
    started = time.monotonic()
    try:
        for i in range(jobs):
            began = time.perf_counter()
            client.request(LIGHT if light else job(f"{prefix}{i}"))
            latencies.append(time.perf_counter() - began)
    finally:
        client.close()
    return started, time.monotonic(), 0, latencies


def p50_ms(latencies: list[float]) -> float | None:
    ordered = sorted(latencies)
    return round(ordered[len(ordered) // 2] * 1000, 3) if ordered else None


def cpu_of(procs: dict[str, psutil.Process]) -> dict[str, float]:
    return {name: sum(proc.cpu_times()[:2]) for name, proc in procs.items()}


def server_time_waits(port: int) -> int:
    return sum(
        1
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_TIME_WAIT and c.laddr and c.laddr.port == port
    )


def gateway_run(
    port: int,
    procs: dict[str, psutil.Process],
    clients: int,
    jobs: int,
    light: bool = False,
    native: bool = False,
    echo_us: float | None = None,
) -> dict[str, Any]:
    """C client processes through the gateway (`port` its port), or natively (the broker's)."""
    per_client = jobs // clients
    before = cpu_of(procs)
    runner = native_run if native else client_run
    tag = "n" if native else "g"
    with ProcessPoolExecutor(clients) as pool:
        futures = [
            pool.submit(runner, port, f"{tag}{clients}x{c}-", per_client, light)
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
    used = {k: after[k] - before[k] for k in procs if not (native and k == "gateway")}
    server_us = 1e6 * sum(used.values()) / total
    out = {
        "clients": clients,
        what: total,
        "wall_sec": round(wall, 3),
        f"{what}_per_sec": round(total / wall, 1),
        "latency_p50_ms": p50_ms([t for r in results for t in r[3]]),
        f"cpu_ms_per_{what[:-1]}": {k: round(1000 * v / total, 3) for k, v in used.items()},
        f"server_cpu_us_per_{what[:-1]}": round(server_us, 1),
        "ratio_to_reference": _echo.ratio(server_us, echo_us),
    }
    if not native:
        out["server_time_wait_sockets"] = server_time_waits(port)
    return out


@contextlib.contextmanager
def fresh_farm(tmp_root: Path, name: str) -> Iterator[tuple[int, int, dict[str, psutil.Process]]]:
    """An afserver with its gateway in its own folder: (gateway port, server port,
    processes)."""
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
        yield gateway_port, port, {n: child(server.pid, m) for n, m in PROCESSES.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Each run on a fresh farm, so every run starts from the same number of jobs (none)."""
    errors: list[str] = []
    results: list[dict[str, Any]] = []
    references = {c: _echo.reference(args.reference, c)["raw_echo"] for c in args.counts}
    with tempfile.TemporaryDirectory(prefix="afbench-gateway-") as tmp_name:
        tmp = Path(tmp_name)
        for clients in args.counts:
            echo_us = references[clients]["cpu_us_per_message"]

            def measure(c: int = clients, ref: float | None = echo_us) -> dict[str, Any]:
                with fresh_farm(tmp, f"c{c}") as (port, _, procs):
                    submitted = gateway_run(port, procs, c, args.jobs, echo_us=ref)
                    light = gateway_run(port, procs, c, args.jobs, light=True, echo_us=ref)
                with fresh_farm(tmp, f"n{c}") as (_, server_port, procs):
                    native = gateway_run(server_port, procs, c, args.jobs, native=True, echo_us=ref)
                return {**submitted, "light": light, "native": native}

            results.append({"clients": clients, **guarded(f"C={clients}", errors, measure)})
    out: dict[str, Any] = {
        "bench": "gateway",
        "machine": machine(platform=platform.platform()),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "tasks_per_job": TASKS_PER_JOB,
        "reference": references,
        "results": results,
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
    parser.add_argument("--reference", type=float, default=2.0, help="raw echo seconds")
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
