"""afserver: starts the broker and the workers as OS processes, restarts the ones that die,
and stops them all on SIGTERM/SIGINT.

The supervisor sleeps in ``sigtimedwait`` on SIGCHLD/SIGTERM/SIGINT, so it wakes exactly
when a child dies or it is asked to stop; the timeout is the next restart deadline.
Children get the resolved configuration through AF_* environment variables, and die with
the supervisor (PR_SET_PDEATHSIG) so a killed afserver leaves nothing holding the port.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auth.modes import CURVE
from broker import EXIT_PORT_IN_USE, local_host, workerlink
from config import ConfigError, load_config
from config.command import fail, parser
from config.logs import VERBOSITY_ENV, setup_logging
from gateway import curve_refusal as gateway_curve_refusal
from gateway import gateway_in_web
from stats import stats_enabled, writer_in_web
from wol import with_own_bin
from workers import ports, watchdog
from workers.scheduler import EXIT_STORE_ERROR

log = logging.getLogger("afserver")

STOP_GRACE_SEC = 4.0  # then SIGKILL: the whole stop stays within 5 s
BACKOFF_MIN = 0.5
BACKOFF_MAX = 10.0
STABLE_SEC = 30.0  # a child that ran this long starts over at the minimum back-off
WATCH_SEC = 2.0  # how often the children's signs of life are looked at
_PR_SET_PDEATHSIG = 1
_WATCHED = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT)


@dataclass(slots=True)
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restart_at: float = 0.0
    backoff: float = BACKOFF_MIN
    restarts: int = 0
    alive: Path | None = None  # the file its loop touches (watchdog.py)
    env: dict[str, str] | None = None  # over afserver's own environment


def _child_setup() -> None:
    """Runs in the child before exec: plain signal mask, and die when afserver dies."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: children outlive a killed afserver; a clean stop still stops them


class Supervisor:
    def __init__(
        self,
        children: list[Child],
        env: dict[str, str],
        run_folder: str | None = None,
        hang_sec: float = 0.0,
    ) -> None:
        """`run_folder`: afserver's private folder, where the children's watchdog files
        are; `hang_sec`: how long a child's loop may give no sign of life (0: not watched)."""
        self.children = children
        self.env = env
        self.run_folder = run_folder
        self.hang_sec = hang_sec if run_folder else 0.0
        self.stopping = False
        self.exit_code = 0

    def start(self, child: Child, now: float) -> None:
        env = {**self.env, **child.env} if child.env else self.env
        if self.hang_sec > 0 and self.run_folder:
            child.alive = watchdog.prepare(self.run_folder, child.name)
            every = watchdog.beat_every(self.hang_sec)
            env = {**env, watchdog.ENV: str(child.alive), watchdog.EVERY_ENV: f"{every:g}"}
        # a group of its own: a hung child is killed with whatever it started
        child.proc = subprocess.Popen(child.argv, env=env, preexec_fn=_child_setup, process_group=0)
        child.started = now
        log.info("started %s (pid %d)", child.name, child.proc.pid)

    def watch(self) -> None:
        """Kill the children whose loops stopped giving signs of life; reap restarts them."""
        for child in self.children:
            if child.proc is None or child.alive is None or child.proc.poll() is not None:
                continue
            silent = watchdog.silent_for(child.alive)
            if silent > self.hang_sec:
                log.error(
                    "%s (pid %d) hung: no sign of life from its loop for %.0f s; killed",
                    child.name,
                    child.proc.pid,
                    silent,
                )
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.proc.pid, signal.SIGKILL)

    def reap(self, now: float) -> None:
        """Notice children that exited; explain each exit and schedule a restart."""
        for child in self.children:
            if child.proc is None or child.proc.poll() is None:
                continue
            code = child.proc.returncode
            how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            child.proc = None
            if self.stopping:
                continue
            fatal = _FATAL.get(code)
            if fatal is not None:
                log.critical("%s %s (see above): stopping afserver", child.name, fatal)
                self.exit_code = code
                self.stopping = True
                continue
            if now - child.started > STABLE_SEC:
                child.backoff = BACKOFF_MIN
            child.restart_at = now + child.backoff
            child.restarts += 1
            log.error(
                "%s (%s) died: %s; restarting in %.1f s",
                child.name,
                child.argv[-1],
                how,
                child.backoff,
            )
            child.backoff = min(child.backoff * 2, BACKOFF_MAX)

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
        now = time.monotonic()
        for child in self.children:
            self.start(child, now)
        watch_every = min(WATCH_SEC, self.hang_sec / 4) if self.hang_sec > 0 else 3600.0
        next_watch = time.monotonic() + watch_every
        while not self.stopping:
            waiting = [c.restart_at for c in self.children if c.proc is None]
            wake = min([*waiting, next_watch])
            info = signal.sigtimedwait(_WATCHED, max(0.0, wake - time.monotonic()))
            now = time.monotonic()
            if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                log.info("stopping on %s", signal.Signals(info.si_signo).name)
                self.stopping = True
                break
            if now >= next_watch:
                self.watch()
                next_watch = now + watch_every
            self.reap(now)
            for child in self.children:
                if child.proc is None and not self.stopping and now >= child.restart_at:
                    self.start(child, now)
        self.stop_all()
        return self.exit_code

    def stop_all(self) -> None:
        """Stop every child but the broker at once, then the broker (so that goodbyes still
        get through), each with SIGTERM then SIGKILL; the whole stop stays within 5 s."""
        deadline = time.monotonic() + STOP_GRACE_SEC
        broker, others = self.children[:1], self.children[1:]
        for group in (others, broker):
            running = [c for c in group if c.proc is not None and c.proc.poll() is None]
            for child in running:
                child.proc.terminate()  # type: ignore[union-attr]
            for child in running:
                proc = child.proc
                assert proc is not None
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning("%s (pid %d) did not stop in time: killed", child.name, proc.pid)
                    proc.kill()
                    proc.wait()
        log.info("stopped")


# Exits that a restart cannot mend: afserver stops with the child's code.
_FATAL = {
    EXIT_STORE_ERROR: "cannot open the store",
    EXIT_PORT_IN_USE: "cannot have the farm's port",
}

EXECUTOR_TASKS = 8  # system tasks the executor runs at once, per service it serves
EXECUTOR_NAME = "sysjob"  # the executor's render name is sysjob@host


def build_children(cfg: Any, local_render: bool) -> list[Child]:
    """Broker, scheduler, the system-job executor, the statistics writer (unless
    af_db_conninfo is off; a thread of the web process when the web is on), the gateway for
    the original's clients (unless af_gateway_port is 0; on the web process's event loop when
    the web is on), the web (unless af_web_port is 0), and (make run) one local afrender.

    The executor is one afrender that allows only the system job's services: it runs system
    tasks over the same task protocol as any render: post commands (postcmd/), events
    (events/) and wakes (wol/, wolwake). One process for the three: each would otherwise be a
    whole afrender at rest (imports, a loop, heartbeats) for work that comes rarely."""
    py = sys.executable
    host = local_host(cfg["af_server_bind_address"])
    server = f"[{host}]:{cfg['af_serverport']}" if ":" in host else f"{host}:{cfg['af_serverport']}"
    children = [
        Child("broker", [py, "-m", "broker.broker"]),
        Child("scheduler", [py, "-m", "workers.scheduler.main"]),
    ]
    keys = ("af_sysjob_postcmd_service", "af_sysjob_events_service", "af_sysjob_wol_service")
    services = list(dict.fromkeys(str(cfg[key]) for key in keys))
    name = f"{EXECUTOR_NAME}@{socket.gethostname().split('.')[0].lower()}"
    argv = [py, "-m", "render.main", "--name", name]
    for service in services:
        argv += ["--service", service]
    argv += ["--tasks", str(EXECUTOR_TASKS * len(services)), "--server", server]
    # its tasks run the project's commands (wolwake) however afserver was started: a unit
    # or script that runs .venv/bin/afserver does not put .venv/bin on PATH
    env = {"PATH": with_own_bin(os.environ.get("PATH", ""))}
    children.append(Child("executor", argv, env=env))
    if int(cfg["af_gateway_port"]) > 0 and not gateway_in_web(cfg):  # else in the web process
        children.append(Child("gateway", [py, "-m", "gateway.main"]))
    if stats_enabled(cfg) and not writer_in_web(cfg):  # else a thread of the web process
        children.append(Child("stats", [py, "-m", "stats.writer"]))
    if int(cfg["af_web_port"]):
        children.append(Child("web", [py, "-m", "web.main"]))
    if local_render:
        children.append(Child("afrender", [py, "-m", "render.main"]))
    return children


def _server_keys_env(cfg: Any) -> dict[str, str]:
    """af_auth = curve: the server's keys (made on the first start), for its children."""
    from auth import curve
    from auth.keys import AuthError, ensure_server_keys

    try:
        if curve.mode(cfg) != CURVE:
            return {}
        folder = curve.keys_folder(cfg)
        ensure_server_keys(folder)
        log.info("authentication: CURVE keys in %s", folder)
        return curve.server_child_env(folder)
    except (AuthError, OSError) as exc:
        fail(f"authentication (af_auth): {exc}")


def main(argv: list[str] | None = None) -> None:
    """Afanasy server: the broker and its workers, supervised."""
    args = parser(main.__doc__ or "")
    args.add_argument("--port", type=int, help="Port to serve on (af_serverport).")
    args.add_argument("--store", help="Store folder (af_store_folder).")
    args.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Any af_* key, repeatable.",
    )
    args.add_argument(
        "--local-render", action="store_true", help="Also run one afrender on this host (make run)."
    )
    args.add_argument(
        "-v", "--verbose", action="count", default=0, help="-v: debug log lines from every process."
    )
    given = args.parse_args(argv)
    overrides: dict[str, Any] = {"af_serverport": given.port, "af_store_folder": given.store}
    for item in given.settings:
        key, sep, value = item.partition("=")
        if not sep:
            args.error(f"--set: expected KEY=VALUE, got {item!r}")
        overrides[key] = value
    try:
        cfg = load_config(overrides)
    except ConfigError as exc:
        fail(str(exc))
    refusal = gateway_curve_refusal(cfg)
    if refusal:
        fail(refusal)
    verbose, local_render = given.verbose, given.local_render
    setup_logging(verbose, "afserver")
    env = {**os.environ, **cfg.as_env(), VERBOSITY_ENV: str(verbose)}
    if str(cfg["af_auth"]).strip():  # keys: only then the CURVE machinery (ZeroMQ, asyncio)
        env.update(_server_keys_env(cfg))
    # the farm's port only: a gateway or web port held by another program leaves the farm
    # serving without that part (its process says why)
    taken = ports.in_use([("farm", str(cfg["af_server_bind_address"]), int(cfg["af_serverport"]))])
    if taken:
        fail(taken)
    log.info("afserver on port %s, store %s", cfg["af_serverport"], cfg["af_store_folder"])
    link, folder = workerlink.create()
    env.update(link.env())
    try:
        children = build_children(cfg, local_render)
        code = Supervisor(children, env, folder, float(cfg["af_watchdog_sec"])).run()
    finally:
        workerlink.remove(folder)
    sys.exit(code)


if __name__ == "__main__":
    main()
