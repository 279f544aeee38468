"""afserver: starts the broker and the workers as OS processes, restarts the ones that die,
and stops them all on SIGTERM/SIGINT.

The supervisor sleeps in ``sigtimedwait`` on SIGCHLD/SIGTERM/SIGINT, so it wakes exactly
when a child dies or it is asked to stop; the timeout is the next restart deadline.
Children get the resolved configuration through AF_* environment variables, and die with
the supervisor (PR_SET_PDEATHSIG) so a killed afserver leaves nothing holding the port.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import click

from auth import curve
from auth.keys import AuthError, ensure_server_keys
from broker.protocol import local_host
from config import ConfigError, load_config
from config.logs import VERBOSITY_ENV, setup_logging
from gateway.main import curve_refusal as gateway_curve_refusal
from stats import stats_enabled
from workers.scheduler import EXIT_STORE_ERROR

log = logging.getLogger("afserver")

STOP_GRACE_SEC = 4.0  # then SIGKILL: the whole stop stays within 5 s
BACKOFF_MIN = 0.5
BACKOFF_MAX = 10.0
STABLE_SEC = 30.0  # a child that ran this long starts over at the minimum back-off
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


def _child_setup() -> None:
    """Runs in the child before exec: plain signal mask, and die when afserver dies."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: children outlive a killed afserver; a clean stop still stops them


class Supervisor:
    def __init__(self, children: list[Child], env: dict[str, str]) -> None:
        self.children = children
        self.env = env
        self.stopping = False
        self.exit_code = 0

    def start(self, child: Child, now: float) -> None:
        child.proc = subprocess.Popen(child.argv, env=self.env, preexec_fn=_child_setup)
        child.started = now
        log.info("started %s (pid %d)", child.name, child.proc.pid)

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
            if code == EXIT_STORE_ERROR:
                log.critical("%s cannot open the store (see above): stopping afserver", child.name)
                self.exit_code = EXIT_STORE_ERROR
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
        while not self.stopping:
            waiting = [c.restart_at for c in self.children if c.proc is None]
            timeout = max(0.0, min(waiting) - time.monotonic()) if waiting else 3600.0
            info = signal.sigtimedwait(_WATCHED, timeout)
            now = time.monotonic()
            if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                log.info("stopping on %s", signal.Signals(info.si_signo).name)
                self.stopping = True
                break
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


EXECUTOR_TASKS = 8  # system tasks an executor runs at once


def build_children(cfg: Any, local_render: bool) -> list[Child]:
    """Broker, scheduler, the system-job executors, the statistics writer (unless
    af_db_conninfo is off), the gateway for the original's clients (unless af_gateway_port
    is 0), the web (unless af_web_port is 0), and (make run) one local afrender.

    An executor is an afrender that allows only its service: it runs system tasks over the
    same task protocol as any render: post commands, events, and wakes (wolwake)."""
    py = sys.executable
    host = local_host(cfg["af_server_bind_address"])
    server = f"[{host}]:{cfg['af_serverport']}" if ":" in host else f"{host}:{cfg['af_serverport']}"
    children = [
        Child("broker", [py, "-m", "broker.broker"]),
        Child("scheduler", [py, "-m", "workers.scheduler.main"]),
    ]
    services = ("af_sysjob_postcmd_service", "af_sysjob_events_service", "af_sysjob_wol_service")
    for service in (cfg[key] for key in services):
        name = f"{service}@{socket.gethostname().split('.')[0].lower()}"
        argv = [
            py,
            "-m",
            "render.main",
            "--name",
            name,
            "--service",
            service,
            "--tasks",
            str(EXECUTOR_TASKS),
        ]
        children.append(Child(f"{service} executor", [*argv, "--server", server]))
    if int(cfg["af_gateway_port"]) > 0:
        children.append(Child("gateway", [py, "-m", "gateway.main"]))
    if stats_enabled(cfg):
        children.append(Child("stats", [py, "-m", "stats.writer"]))
    if int(cfg["af_web_port"]):
        children.append(Child("web", [py, "-m", "web.main"]))
    if local_render:
        children.append(Child("afrender", [py, "-m", "render.main"]))
    return children


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--port", type=int, default=None, help="Port to serve on (af_serverport).")
@click.option("--store", default=None, help="Store folder (af_store_folder).")
@click.option(
    "--set", "settings", multiple=True, metavar="KEY=VALUE", help="Any af_* key, repeatable."
)
@click.option("--local-render", is_flag=True, help="Also run one afrender on this host (make run).")
@click.option("-v", "--verbose", count=True, help="-v: debug log lines from every process.")
def main(
    port: int | None, store: str | None, settings: tuple[str, ...], local_render: bool, verbose: int
) -> None:
    """Afanasy server: the broker and its workers, supervised."""
    overrides: dict[str, Any] = {"af_serverport": port, "af_store_folder": store}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        overrides[key] = value
    try:
        cfg = load_config(overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    refusal = gateway_curve_refusal(cfg)
    if refusal:
        raise click.ClickException(refusal)
    setup_logging(verbose, "afserver")
    env = {**os.environ, **cfg.as_env(), VERBOSITY_ENV: str(verbose)}
    try:
        if curve.mode(cfg) == curve.CURVE:
            folder = curve.keys_folder(cfg)
            ensure_server_keys(folder)
            env.update(curve.server_child_env(folder))
            log.info("authentication: CURVE keys in %s", folder)
    except (AuthError, OSError) as exc:
        raise click.ClickException(f"authentication (af_auth): {exc}") from exc
    log.info("afserver on port %s, store %s", cfg["af_serverport"], cfg["af_store_folder"])
    sys.exit(Supervisor(build_children(cfg, local_render), env).run())


if __name__ == "__main__":
    main()
