"""What the afserver tree costs at rest: CPU % of one core and PSS, per process and in total.

A fresh afserver in its default configuration (supervisor, broker, scheduler, the
system-job executor, web: five processes, the web serving the gateway on its event loop and
writing the statistics in a thread; each port a free loopback one, the store in a temp dir,
no local render), measured over --seconds with no renders, then again with --renders
real afrender processes online and idle (heartbeat every second). The renders themselves are
not counted: the figure is the server's.

CPU: utime+stime from /proc/<pid>/stat of every process in afserver's tree, the delta over
the window, as a percentage of one core. PSS: /proc/<pid>/smaps_rollup at the end of the
window (shared pages split between the processes that map them, so the total is the tree's
real share of memory).

Reference: the raw pyzmq echo (bench/_echo.py) idles beside the tree for the whole run: its
CPU % and PSS are what one Python process with libzmq costs at rest on this machine today (a
floor for each of the tree's processes). The line also carries the original C++ server's
figures measured on this machine (issue 22) and the goals, beside the load average.

Prints one JSON line per phase, then a summary line; logs go to stderr; exits 1 when a run
failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench._common import (  # noqa: E402
    BenchError,
    afserver_env,
    ask,
    free_port,
    guarded,
    logs_on_failure,
    machine,
    spawn,
    stop,
    stop_all,
    wait_for,
)
from bench._echo import Echo  # noqa: E402
from broker import protocol as P  # noqa: E402
from broker.client import Client  # noqa: E402

log = logging.getLogger("bench.idle")

START_TIMEOUT = 30.0
SETTLE_SEC = 3.0  # after start: first solves, first statistics flush, imports done
CLK_TCK = os.sysconf("SC_CLK_TCK")
REFERENCE = {
    "original_cpu_pct": {"0": 0.4, "10": 0.6},
    "goal_cpu_pct": {"0": 0.5, "10": 1.0},
    "goal_pss_mb": 100.0,
}


def ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks (fields 14 and 15 of /proc/pid/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise BenchError(f"no Pss line for pid {pid}")


def label(proc: psutil.Process) -> str:
    """What a process of the tree is: supervisor, broker, scheduler, executor..."""
    argv = proc.cmdline()
    if "-m" not in argv:
        return "supervisor" if "supervisor" in " ".join(argv) else Path(argv[0]).name
    module = argv[argv.index("-m") + 1]
    if module == "render.main" and "--service" in argv:
        services = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--service"]
        return "executor" if len(services) > 1 else f"{services[0]} executor"
    return {
        "workers.supervisor": "supervisor",
        "broker.broker": "broker",
        "workers.scheduler.main": "scheduler",
        "gateway.main": "gateway",  # its own process only with the web off
        "stats.writer": "stats",
        "web.main": "web+gateway",  # with the statistics writer's thread
        "render.executors": "executors",
    }.get(module, module)


def tree(root_pid: int) -> dict[int, str]:
    root = psutil.Process(root_pid)
    procs = {}
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            procs[proc.pid] = label(proc)
    return procs


class Settled:
    """True once afserver's tree kept the same processes for SETTLE_SEC (its children
    are started at once; how many there are is the configuration's business)."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.pids: set[int] = set()
        self.since = time.monotonic()

    def __call__(self) -> bool:
        pids = set(tree(self.root_pid))
        if pids != self.pids:
            self.pids, self.since = pids, time.monotonic()
        return len(pids) > 1 and time.monotonic() - self.since >= SETTLE_SEC


def measure(root_pid: int, seconds: float) -> dict[str, Any]:
    """CPU % of one core per process over `seconds`, and PSS at the end, with totals."""
    procs = tree(root_pid)
    before = {pid: ticks(pid) for pid in procs}
    started = time.monotonic()
    time.sleep(seconds)  # the measurement window itself, not a wait for a condition
    wall = time.monotonic() - started
    after = tree(root_pid)
    if set(after) != set(procs):
        raise BenchError(f"the tree changed during the window: {procs} -> {after}")
    per: dict[str, dict[str, float]] = {}
    for pid, name in procs.items():
        cpu = (ticks(pid) - before[pid]) / CLK_TCK / wall * 100
        key = name if name not in per else f"{name} {pid}"
        per[key] = {"cpu_pct": round(cpu, 3), "pss_mb": round(pss_kb(pid) / 1024, 1)}
    return {
        "seconds": round(wall, 1),
        "processes": per,
        "cpu_pct": round(sum(p["cpu_pct"] for p in per.values()), 3),
        "pss_mb": round(sum(p["pss_mb"] for p in per.values()), 1),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def run_phases(tmp: Path, seconds: float, renders: int) -> dict[str, Any]:
    port = free_port()
    settings = {"af_web_port": free_port(), "af_gateway_port": free_port()}
    env = afserver_env(tmp, port, af_render_heartbeat_sec=1, **settings)
    server = spawn(["-m", "workers.supervisor"], env, tmp / "afserver.log")
    procs: list[Any] = []
    client = Client(P.endpoint("127.0.0.1", port), timeout=5.0)

    def close() -> None:
        client.close()
        stop_all(procs, "afrender")
        stop(server, "afserver")

    errors: list[str] = []
    phases: dict[str, Any] = {}
    with logs_on_failure(tmp, close, chars=2000):

        def stat() -> Any:
            if server.poll() is not None:
                raise BenchError(f"afserver exited with code {server.returncode}")
            return ask(client, {"get": {"type": "stat"}}, timeout=0.5)

        wait_for(stat, START_TIMEOUT, "afserver to answer stat")
        wait_for(Settled(server.pid), START_TIMEOUT, "afserver's children to be started")
        time.sleep(SETTLE_SEC)  # let start-up work finish before the window opens
        phases["renders_0"] = guarded("0 renders", errors, lambda: measure(server.pid, seconds))
        if renders:
            names = [f"idle{i:02d}" for i in range(renders)]
            for name in names:
                procs.append(spawn(["-m", "render.main", "--name", name], env, tmp / f"{name}.log"))

            def online() -> bool:
                reply = ask(client, {"get": {"type": "renders"}}, timeout=1.0)
                up = {r["name"] for r in (reply or {}).get("renders", []) if r.get("online")}
                return up >= set(names)

            wait_for(online, START_TIMEOUT, f"{renders} renders to be online")
            time.sleep(SETTLE_SEC)
            phases[f"renders_{renders}"] = guarded(
                f"{renders} renders", errors, lambda: measure(server.pid, seconds)
            )
    return {"phases": phases, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="window per phase")
    parser.add_argument("--renders", type=int, default=10, help="idle afrenders, 2nd phase")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    with (
        tempfile.TemporaryDirectory(prefix="af-bench-idle-") as tmp,
        Echo("raw", free_port()) as echo,
    ):
        began, echo_ticks = time.monotonic(), ticks(echo.proc.pid)
        try:
            result = run_phases(Path(tmp), args.seconds, args.renders)
        except BenchError as exc:
            result = {"phases": {}, "errors": [str(exc)]}
        window = time.monotonic() - began
        raw_echo = {
            "cpu_pct": round((ticks(echo.proc.pid) - echo_ticks) / CLK_TCK * 100 / window, 3),
            "pss_mb": round(pss_kb(echo.proc.pid) / 1024, 1),
        }
    for name, phase in result["phases"].items():
        print(json.dumps({"bench": "idle", "phase": name, **phase}), flush=True)
    summary = {
        "bench": "idle",
        "ok": not result["errors"],
        "errors": result["errors"],
        "cpu_pct": {k: p.get("cpu_pct") for k, p in result["phases"].items()},
        "pss_mb": {k: p.get("pss_mb") for k, p in result["phases"].items()},
        "reference": {"raw_echo_at_rest": raw_echo, **REFERENCE},
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "machine": machine(),
    }
    print(json.dumps(summary), flush=True)
    if not summary["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
