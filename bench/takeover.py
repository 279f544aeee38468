"""Takeover: how soon a standby afserver serves the farm when the active one dies or freezes.

Two afservers on one fresh PostgreSQL database (af_pg_bench_*): A starts first and is
active, B waits as a standby. A job of --tasks unstarted tasks is submitted. Then, --repeats
times, alternately on whichever server is active:

- kill: SIGKILL to the active's whole tree (broker, scheduler, every worker): the time until
  the standby answers `get stat` (`serve_sec`) and until it answers with the job and all its
  tasks (`job_sec`). PostgreSQL sees the dead session's socket close and frees its lock at
  once, so this is the standby's lock poll plus its restore.
- freeze: SIGSTOP to the active's tree (alive, holding its lock, answering nothing), the
  same two times, then SIGCONT: `stepped_down_sec` is the time until the frozen server
  answers as a standby (its scheduler found its session gone, committed nothing, exited, and
  was started again by its supervisor). This one waits for the lease
  (PostgreSQL's idle_session_timeout on the active's session), so it is the longer one.

A killed server is started again as the next standby. The in-run reference is
A's own first start on the empty store (spawn to `get stat` answered): a takeover cannot be
shorter than a server's start, so `ratio_to_start` says what detection costs on top.

Prints one JSON line on stdout; logs go to stderr; exits 1 when something failed (a standby
that did not serve, a lost job), never for a missed target.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as `python bench/takeover.py`, this file's folder is sys.path[0], where bench/broker.py
# would shadow the `broker` package: put the project root there instead, before importing it.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench._common import (  # noqa: E402
    afserver_env,
    free_port,
    logs_on_failure,
    machine,
    pg_database,
    report,
    spawn,
    stop_all,
    submit,
    wait_for,
)
from broker import protocol as P  # noqa: E402
from broker.client import Client, ClientError, ServerError  # noqa: E402

log = logging.getLogger("bench.takeover")

START_TIMEOUT = 60.0
TAKEOVER_TIMEOUT = 60.0
TARGETS = {"kill_serve_sec_max": 10.0, "freeze_serve_sec_max": 10.0}


class Server:
    """One afserver of the pair: its own folder, config and port, the shared store."""

    def __init__(self, tmp: Path, name: str, store_db: str) -> None:
        self.tmp = tmp / name
        self.tmp.mkdir()
        self.log_file = tmp / f"{name}.log"  # beside the other's: logs_on_failure shows both
        self.name = name
        self.port = free_port()
        self.env = afserver_env(self.tmp, self.port, af_store_db=store_db, af_db_conninfo="off")
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = Client(P.endpoint("127.0.0.1", self.port), timeout=1.0)

    def start(self) -> float:
        """Spawn it; returns the monotonic time it was spawned."""
        self.proc = spawn(["-m", "workers.supervisor"], self.env, self.log_file)
        return time.monotonic()

    def answer(self, body: dict[str, Any]) -> Any:
        """The reply, or None while it is down or a standby."""
        try:
            return self.client.request(body, timeout=0.5)
        except ClientError:
            return None

    def is_standby(self) -> bool:
        try:
            self.client.request({"get": {"type": "stat"}}, timeout=0.5)
        except ServerError as exc:
            return exc.code == P.ErrorCode.STANDBY
        except ClientError:
            return False
        return False

    def tree(self) -> list[psutil.Process]:
        assert self.proc is not None
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def signal_tree(self, sig: int) -> list[psutil.Process]:
        procs = self.tree()
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(sig)
        return procs

    def close(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                for proc in self.tree():
                    proc.send_signal(signal.SIGCONT)  # a frozen tree cannot stop
            stop_all([self.proc], f"afserver {self.name}")
        self.client.close()


def job_whole(server: Server, job_id: int, tasks: int) -> bool:
    reply = server.answer({"get": {"type": "jobs", "ids": [job_id], "mode": "list"}})
    if not reply or not reply.get("jobs"):
        return False
    return bool(reply["jobs"][0]["tasks_num"] == tasks)


def take_over(active: Server, standby: Server, how: str, job_id: int, tasks: int) -> dict[str, Any]:
    """Kill or freeze `active`; the times until `standby` serves, then `active` is a standby
    again (restarted after a kill, stepped down and restarted after a freeze)."""
    wait_for(standby.is_standby, START_TIMEOUT, f"{standby.name} to wait as a standby")
    sig = signal.SIGKILL if how == "kill" else signal.SIGSTOP
    frozen = active.signal_tree(sig)
    began = time.monotonic()
    out: dict[str, Any] = {"how": how}
    try:
        wait_for(
            lambda: standby.answer({"get": {"type": "stat"}}),
            TAKEOVER_TIMEOUT,
            f"{standby.name} serving",
        )
        out["serve_sec"] = round(time.monotonic() - began, 3)
        wait_for(lambda: job_whole(standby, job_id, tasks), TAKEOVER_TIMEOUT, "the job restored")
        out["job_sec"] = round(time.monotonic() - began, 3)
    finally:
        if how == "freeze":
            resumed = time.monotonic()
            for proc in frozen:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.send_signal(signal.SIGCONT)
    if how == "freeze":
        # its scheduler finds its session gone, commits nothing and exits; the supervisor
        # starts it again, as a standby of the new active
        wait_for(active.is_standby, TAKEOVER_TIMEOUT, f"{active.name} to step down")
        out["stepped_down_sec"] = round(time.monotonic() - resumed, 3)
        return out
    assert active.proc is not None
    active.proc.wait(TAKEOVER_TIMEOUT)  # killed: its children are gone or going
    active.client.close()
    active.client = Client(P.endpoint("127.0.0.1", active.port), timeout=1.0)
    active.start()
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "bench": "takeover",
        "machine": machine(load=[round(x, 2) for x in os.getloadavg()]),
        "options": vars(args),
    }
    rounds: list[dict[str, Any]] = []
    with (
        pg_database(args.postgresql) as store_db,
        tempfile.TemporaryDirectory(prefix="afbench-takeover-") as tmp_name,
    ):
        tmp = Path(tmp_name)
        a, b = Server(tmp, "a", store_db), Server(tmp, "b", store_db)

        def close() -> None:
            a.close()
            b.close()

        with logs_on_failure(tmp, close, chars=3000):
            spawned = a.start()
            wait_for(lambda: a.answer({"get": {"type": "stat"}}), START_TIMEOUT, "a serving")
            out["reference"] = {"start_sec": round(time.monotonic() - spawned, 3)}
            job_id = submit(a.client, "kept", args.tasks)
            b.start()
            active, standby = a, b
            for i in range(args.repeats * 2):
                how = "kill" if i % 2 == 0 else "freeze"
                rounds.append(take_over(active, standby, how, job_id, args.tasks))
                log.info("round %d: %s", i, rounds[-1])
                active, standby = standby, active
    start = out["reference"]["start_sec"]
    for how in ("kill", "freeze"):
        mine = [r for r in rounds if r["how"] == how]
        serve = [r["serve_sec"] for r in mine]
        out[how] = {
            "rounds": len(mine),
            "serve_sec_median": round(statistics.median(serve), 3),
            "serve_sec_max": max(serve),
            "job_sec_max": max(r["job_sec"] for r in mine),
            "ratio_to_start": round(statistics.median(serve) / start, 2) if start else None,
        }
        if how == "freeze":
            out[how]["stepped_down_sec_max"] = max(r["stepped_down_sec"] for r in mine)
    out["rounds"] = rounds
    out["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    out["targets"] = TARGETS
    out["targets_met"] = {
        "kill_serve_sec_max": out["kill"]["serve_sec_max"] <= TARGETS["kill_serve_sec_max"],
        "freeze_serve_sec_max": out["freeze"]["serve_sec_max"] <= TARGETS["freeze_serve_sec_max"],
    }
    out["ok"] = True
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgresql",
        default="host=127.0.0.1 user=postgres",
        help="a PostgreSQL server's connection string without dbname, where a fresh "
        "af_pg_bench_* database is made and dropped",
    )
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks of the kept job")
    parser.add_argument("--repeats", type=int, default=2, help="kill and freeze rounds each")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.repeats < 1:
        parser.error("--tasks and --repeats must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report(lambda: run(args))


if __name__ == "__main__":
    main()
