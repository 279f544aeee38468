"""Fixtures that own ports, store folders, processes and time.

Integration tests start the real afserver, afrender and afcmd as processes on loopback,
each test with its own port, store folder, config file and HOME, so nothing leaks between
tests and nothing outside the test is read. Waits poll a condition until a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_REQUIRED_ENV = "AF_TEST_REQUIRE_PG"
BROWSER_REQUIRED_ENV = "AF_TEST_REQUIRE_BROWSER"
CHROMIUM = "/usr/bin/chromium"


def pytest_configure(config: pytest.Config) -> None:
    """The farm's processes import the installed packages, not the test files' folder: a
    virtualenv installed from another checkout would test that checkout's code in silence."""
    found = subprocess.run(
        [sys.executable, "-c", "import workers; print(workers.__file__)"],
        cwd="/",
        capture_output=True,
        text=True,
    ).stdout.strip()
    installed = Path(found).resolve().parent.parent if found else None
    if installed != ROOT:
        pytest.exit(
            f"this virtualenv runs the code of {installed}, not of {ROOT}: "
            f"run `make install` in {ROOT} and use its .venv",
            returncode=4,
        )


SLACK_MAX = 10.0  # a deadline stretched at most tenfold: a broken test still fails in minutes
STARTUP_SEC = 60.0  # afserver answering, renders online: seconds when idle, stretched by load


def load_slack() -> float:
    """How much slower than idle this machine runs now: the 1-minute load average per core,
    at least 1, at most SLACK_MAX."""
    try:
        per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        return 1.0
    return min(SLACK_MAX, max(1.0, per_core))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test's pytest-timeout (ini `timeout`, or its own mark) stretched by the load."""
    slack = load_slack()
    if slack <= 1.0:
        return
    default = float(config.getini("timeout") or 0)
    for item in items:
        mark = item.get_closest_marker("timeout")
        base = float(mark.args[0]) if mark is not None and mark.args else default
        if base > 0:
            item.add_marker(pytest.mark.timeout(base * slack), append=False)  # before its own


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll until condition() is truthy; fail the test with `what` when the deadline passes.
    The deadline is `timeout` stretched by the machine's load (`load_slack`)."""
    timeout *= load_slack()
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the condition may raise while things come up
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(interval)


class Farm:
    """One test's farm: a port, a store, a config, and the processes started on them."""

    def __init__(self, tmp: Path, settings: dict[str, Any]) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.store = tmp / "store"
        self.home = tmp / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_file = tmp / "config.json"
        config = {
            "af_serverport": self.port,
            "af_server_bind_address": "127.0.0.1",
            "af_servername": "127.0.0.1",
            "af_store_folder": str(self.store),
            "af_render_heartbeat_sec": 0.5,
            "af_render_zombietime": 3.0,
            "af_worker_heartbeat_sec": 0.5,
            "af_client_timeout": 4.0,
            "af_web_port": 0,  # the web process only where a test asks for it
            "af_gateway_port": 0,  # tests that use the gateway give it a free port
            **settings,
        }
        self.config_file.write_text(json.dumps(config))
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith("AF_") or k == PG_REQUIRED_ENV
        }
        self.env.update(
            {"AF_CONFIG": str(self.config_file), "HOME": str(self.home), "PYTHONUNBUFFERED": "1"}
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self._client: Any = None
        self.server: subprocess.Popen[bytes] | None = None

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - the process owns it
        proc = subprocess.Popen(
            argv,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.tmp,
        )
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start_server(self, *args: str) -> subprocess.Popen[bytes]:
        self.server = self._spawn(
            "afserver", [sys.executable, "-m", "workers.supervisor", "-v", *args]
        )
        self.wait_serving()
        return self.server

    def wait_serving(self, timeout: float = STARTUP_SEC) -> None:
        """Until afcmd gets an answer; at once a clear failure if afserver has exited."""

        def serving() -> bool:
            if self.server is not None and self.server.poll() is not None:
                tail = "\n".join(self.log("afserver").splitlines()[-20:])
                pytest.fail(f"afserver exited ({self.server.returncode}) before serving:\n{tail}")
            return self.afcmd("stat").returncode == 0

        wait_for(serving, timeout, "afserver to answer afcmd stat")

    def start_render(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        return self._spawn(
            f"render-{name}", [sys.executable, "-m", "render.main", "--name", name, *args], env
        )

    def afcmd(
        self, *args: str, timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """afcmd with the farm's environment, plus `env` (AF_USERNAME=... to be another user)."""
        return subprocess.run(
            [sys.executable, "-m", "afcmd", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.tmp,
        )

    def ask(self, body: dict[str, Any]) -> Any:
        """A request straight from the test process (quicker than an afcmd process per poll)."""
        from broker.client import Client
        from broker.protocol import endpoint

        if self._client is None:
            self._client = Client(endpoint("127.0.0.1", self.port), timeout=5.0)
        return self._client.request(body)

    def job(self, job_id: int) -> dict[str, Any]:
        return self.ask({"get": {"type": "jobs", "ids": [job_id], "mode": "full"}})["jobs"][0]

    def tasks(self, job_id: int, mode: str = "list", **extra: Any) -> list[dict[str, Any]]:
        return self.ask({"get": {"type": "tasks", "job_id": job_id, "mode": mode, **extra}})[
            "tasks"
        ]

    def renders(self, executors: bool = False) -> list[dict[str, Any]]:
        """Renders as afcmd lists them; the system-job executors ("service@host") left out."""
        result = self.afcmd("rlist", "--json")
        assert result.returncode == 0, result.stderr
        return [r for r in json.loads(result.stdout) if executors or "@" not in r["name"]]

    def online(self) -> set[str]:
        return {r["name"] for r in self.renders() if r["online"]}

    def child(self, module: str) -> psutil.Process:
        """A child process of afserver by its module (broker.broker, workers.scheduler.main)."""
        assert self.server is not None
        for proc in psutil.Process(self.server.pid).children():
            try:
                if module in proc.cmdline():
                    return proc
            except psutil.NoSuchProcess:
                continue
        raise LookupError(f"afserver has no child running {module}")

    def stop(self) -> None:
        """Renders first (they say goodbye through the server), then the server."""
        if self._client is not None:
            self._client.close()
        last = [p for p in self.procs if p is self.server]
        for group in ([p for p in self.procs if p is not self.server], last):
            for proc in group:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in group:
                try:
                    proc.wait(8)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def make_farm(tmp_path: Path) -> Iterator[Callable[..., Farm]]:
    farms: list[Farm] = []

    def make(**settings: Any) -> Farm:
        farm = Farm(tmp_path / f"farm{len(farms)}", settings)
        farm.tmp.mkdir(exist_ok=True)
        farms.append(farm)
        return farm

    yield make
    for farm in farms:
        farm.stop()


def web_call(
    farm: Farm, method: str, path: str, body: Any = None, **headers: str
) -> tuple[int, Any]:
    """One request to the farm's web process (`farm.web`): a JSON body (or raw bytes, sent
    as JSON too unless `headers` name another type), and the status with the JSON answer,
    errors included."""
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    if data is not None and not any(k.lower() == "content-type" for k in headers):
        headers = {**headers, "Content-Type": "application/json"}
    req = urllib.request.Request(f"{farm.web}{path}", data=data, method=method, headers=headers)  # type: ignore[attr-defined]
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def make_web_farm(make_farm: Callable[..., Farm]) -> Callable[..., Farm]:
    """A served farm with its web process on a port of its own (`farm.web` is its URL) and
    the named renders online."""

    def make(*renders: str, **settings: Any) -> Farm:
        port = free_port()
        farm = make_farm(af_web_port=port, **settings)
        farm.web = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        farm.start_server()
        for name in renders:
            farm.start_render(name)
        wait_for(lambda: farm.online() == set(renders), STARTUP_SEC, f"renders {renders} online")
        return farm

    return make


def make_key(farm: Farm, name: str) -> dict[str, str]:
    """`afcmd keys create NAME`; returns the env that makes a process use that key."""
    out = farm.tmp / f"keys-{name}"
    result = farm.afcmd("keys", "create", name, "--out", str(out))
    assert result.returncode == 0, result.stderr
    return {
        "AF_AUTH_KEY_FILE": str(out / "client.key_secret"),
        "AF_AUTH_SERVER_KEY_FILE": str(out / "server.key"),
    }


@pytest.fixture
def make_curve_farm(make_farm: Callable[..., Farm]) -> Callable[..., Farm]:
    """A served CURVE farm (af_auth = curve) whose default afcmd (the test's own HOME) holds
    the key of 'boss', an admin."""

    def make(**settings: Any) -> Farm:
        farm = make_farm(af_auth="curve", af_admins=["boss"], **settings)
        boss = make_key(farm, "boss")
        (farm.home / ".afanasy").mkdir()
        for env_key, name in (
            ("AF_AUTH_KEY_FILE", "client.key_secret"),
            ("AF_AUTH_SERVER_KEY_FILE", "server.key"),
        ):
            os.replace(boss[env_key], farm.home / ".afanasy" / name)
        farm.start_server()
        return farm

    return make


@pytest.fixture
def farm(make_farm: Callable[..., Farm]) -> Farm:
    return make_farm()


@pytest.fixture
def pg_conninfo() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped after it. Where no PostgreSQL is
    reachable the test is skipped with the reason; with AF_TEST_REQUIRE_PG set (CI), it fails."""
    import uuid

    import psycopg

    base = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
    try:
        admin = psycopg.connect(base, autocommit=True)
    except psycopg.Error as exc:
        if os.environ.get(PG_REQUIRED_ENV):
            pytest.fail(f"PostgreSQL is required here ({PG_REQUIRED_ENV}) but unreachable: {exc}")
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 ({exc})")
    name = f"af_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    finally:
        # a new connection: a test may have restarted PostgreSQL meanwhile
        with contextlib.suppress(psycopg.Error), psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Debian chromium driven by playwright. Skipped with the reason where it is not
    installed; with AF_TEST_REQUIRE_BROWSER set (CI installs it), it fails instead."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get(BROWSER_REQUIRED_ENV):
            pytest.fail(
                f"chromium is required here ({BROWSER_REQUIRED_ENV}) but {CHROMIUM} is missing"
            )
        pytest.skip(f"no {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def kill_tree(pid: int) -> None:
    """kill -9 of a process and all under it: stopped first, so that none starts a new one
    (an executor its next task) between the listing and the kill."""
    procs = {psutil.Process(pid)}
    procs.copy().pop().send_signal(signal.SIGSTOP)
    while True:
        found = set(procs)
        for proc in list(procs):
            with contextlib.suppress(psutil.NoSuchProcess):
                found.update(proc.children(recursive=True))
        for proc in found - procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGSTOP)
        if found == procs:
            break
        procs = found
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(list(procs), timeout=10)


def submit(farm: Farm, job: dict[str, Any], env: dict[str, str] | None = None) -> int:
    """Submit through afcmd (stdin), return the new job id."""
    result = subprocess.run(
        [sys.executable, "-m", "afcmd", "job", "submit", "-"],
        input=json.dumps({"job": job}),
        env={**farm.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=farm.tmp,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[1])


@pytest.fixture
def http_sink() -> Iterator[tuple[list[dict[str, Any]], int]]:
    """An HTTP server on loopback that keeps the JSON bodies POSTed to it (webhook sink)."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received, server.server_address[1]
    server.shutdown()


def help_examples(text: str) -> list[dict[str, Any]]:
    """The JSON jobs in a help text (objects with a "name", from an opening brace to its
    matching close, the text's line breaks and indents folded away)."""
    flat = " ".join(text.split())
    found, depth, start = [], 0, 0
    for i, ch in enumerate(flat):
        if ch == "{":
            start = i if depth == 0 else start
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                found.append(flat[start : i + 1])
    return [json.loads(t) for t in found if '"name"' in t]
