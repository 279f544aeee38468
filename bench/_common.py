"""What the benchmarks in bench/ share: starting afserver and afrender on loopback in a temp
dir of their own, waiting for them, stopping them, and the one JSON line each prints.

Not a benchmark: the leading underscore keeps `make bench` from running it. The benchmarks
put the project root first on sys.path before they import this, so `broker` here is the
package, not bench/broker.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import psutil
import zmq

from broker.client import Client, ClientError

log = logging.getLogger("bench")

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
POLL_SEC = 0.02  # readiness, online, summary and RSS polls
STOP_TIMEOUT = 10.0  # afserver stops its children within 5 s itself
SUBMIT_TIMEOUT = 60.0  # one reply to a 10,000-task submission
RSS_STABLE_SEC = 0.5  # RSS counts as settled when it did not move for this long
RSS_TOLERANCE = 64 * 1024  # ... by more than this (a page here and there is noise)
MB = 1024 * 1024
_PR_SET_PDEATHSIG = 1


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


def ask(client: Client, body: dict[str, Any], timeout: float) -> Any:
    """A request whose failure means "not yet" while things come up."""
    try:
        return client.request(body, timeout=timeout)
    except ClientError:
        return None


@contextlib.contextmanager
def pg_database(server: str) -> Iterator[str]:
    """A fresh database (af_pg_bench_*) on the PostgreSQL `server` (a connection string
    without dbname), dropped after, sessions and all; "" (the SQLite store) when `server` is
    empty."""
    if not server:
        yield ""
        return
    import uuid

    import psycopg

    name = f"af_pg_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{server} dbname=postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{server} dbname={name}"
    finally:
        with psycopg.connect(f"{server} dbname=postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --- processes --------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on now; the server binds it a moment later."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent() -> None:
    """Runs in the child before exec: a killed benchmark must not leave processes behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def afserver_env(tmp: Path, port: int, **settings: Any) -> dict[str, str]:
    """Write tmp/config.json (loopback, `port`, the store under tmp, plus `settings`) and
    return the caller's environment without its AF_* settings, so only that config counts."""
    config_file = tmp / "config.json"
    config = {
        "af_serverport": port,
        "af_server_bind_address": "127.0.0.1",
        "af_servername": "127.0.0.1",
        "af_store_folder": str(tmp / "store"),
        "af_web_port": 0,
        "af_gateway_port": 0,  # no gateway on the fixed port unless a benchmark asks for one
        **settings,
    }
    config_file.write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AF_")}
    env.update({"AF_CONFIG": str(config_file), "HOME": str(tmp), "PYTHONUNBUFFERED": "1"})
    return env


def spawn(argv: list[str], env: dict[str, str], out_path: Path) -> subprocess.Popen[bytes]:
    """`python argv` from the project root, stdout and stderr appended to out_path."""
    with open(out_path, "ab") as out:  # the child has its own copy once it runs
        return subprocess.Popen(
            [sys.executable, *argv],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )


def stop_all(procs: list[subprocess.Popen[bytes]], what: str) -> None:
    """SIGTERM to all at once, then SIGKILL whatever is left after STOP_TIMEOUT: the
    benchmark never leaves a process."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) did not stop in %g s: killed", what, proc.pid, STOP_TIMEOUT)
            proc.kill()
            proc.wait()


def stop(proc: subprocess.Popen[bytes] | None, what: str) -> None:
    """stop_all for one process that may not have been started."""
    stop_all([proc] if proc is not None else [], what)


def child(parent_pid: int, module: str) -> psutil.Process:
    """The afserver child running `module` (broker.broker, workers.scheduler.main)."""
    for proc in psutil.Process(parent_pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if module in proc.cmdline():
                return proc
    raise BenchError(f"afserver has no child running {module}")


def settled_rss(proc: psutil.Process, timeout: float) -> int:
    """RSS once it stopped moving for RSS_STABLE_SEC (submissions may still be digested, the
    first solve may still allocate); the last reading when `timeout` passes first."""
    deadline = time.monotonic() + timeout
    rss = proc.memory_info().rss
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < RSS_STABLE_SEC:
        if time.monotonic() >= deadline:
            log.warning("RSS of pid %d still moving after %g s; using %d", proc.pid, timeout, rss)
            return rss
        time.sleep(POLL_SEC)
        now_rss = proc.memory_info().rss
        if abs(now_rss - rss) > RSS_TOLERANCE:
            rss, stable_since = now_rss, time.monotonic()
    return rss


@contextlib.contextmanager
def logs_on_failure(tmp: Path, close: Callable[[], None], chars: int) -> Iterator[None]:
    """Always close(); when the block failed, first the tail of every log in tmp on stderr,
    since the processes' own output is all there is to say why."""
    try:
        yield
    except BaseException:
        sys.stderr.write(
            "".join(
                f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}"
                for path in sorted(tmp.glob("*.log"))
            )
        )
        raise
    finally:
        close()


# --- jobs -------------------------------------------------------------------------------


class Requester(Protocol):
    """A Client, or a benchmark's wrapper around the one it currently has."""

    def request(self, body: dict[str, Any], timeout: float) -> Any: ...


def numeric_job(name: str, tasks: int) -> dict[str, Any]:
    """One block of `tasks` frames whose command is `true`: a task that costs almost nothing."""
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": tasks, "command": "true"}
    return {"job": {"name": name, "blocks": [block]}}


def submit(client: Requester, name: str, tasks: int) -> int:
    """Submit one numeric_job; returns its id."""
    reply = client.request(numeric_job(name, tasks), timeout=SUBMIT_TIMEOUT)
    return int(reply["id"])


def submit_many(client: Requester, prefix: str, jobs: int, tasks: int) -> float:
    """Submit `jobs` jobs named prefix0.. one by one; returns the wall time it took."""
    started = time.monotonic()
    for i in range(jobs):
        submit(client, f"{prefix}{i}", tasks)
    return time.monotonic() - started


# --- the line ---------------------------------------------------------------------------


def machine(**extra: Any) -> dict[str, Any]:
    """What the numbers depend on, plus what a benchmark adds (libzmq, platform)."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pyzmq": zmq.__version__,
        **extra,
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


def report(run: Callable[[], dict[str, Any]]) -> None:
    """Logs on stderr, run(), its result as one JSON line on stdout, exit 1 unless it is ok.

    SIGTERM unwinds like Ctrl-C, so the finally blocks stop every process started."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = run()
    print(json.dumps(result), flush=True)
    if not result["ok"]:
        sys.exit(1)
