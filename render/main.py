"""afrender: the render client. Registers, heartbeats with its resources, deregisters on exit.

One DEALER to the server under an identity unique to this process, one poll loop whose
timeout is the next heartbeat. While the server is unreachable it keeps trying; when the
server says it does not know it (restart, zombie) it registers again. A slow server is not a
lost one: see render/pace.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import zmq

from auth import curve
from auth.keys import AuthError
from broker import protocol as P
from broker.client import caller_identity
from config import ConfigError, load_config
from config.command import fail, parser
from config.logs import setup_logging
from render import pace
from render.resources import ResourceMeter, host_info, net_interfaces, os_string, render_name
from render.tasks import TaskManager
from wol import with_own_bin
from workers import watchdog

log = logging.getLogger("afrender")

MOVE_ON_GRACE_SEC = 1.0  # a new connection's time to come up before its server is given up
REFUSED_RETRY_SEC = 5.0  # after the server refused us (a render of this name is online)
DEREGISTER_WAIT_SEC = 1.0
TROUBLE_LOG_SEC = 60.0  # a refused key is said once a minute, not at every retry
TASK_CHECK_SEC = 0.2  # while tasks run: how often exits without EOF and overdue kills are looked at


def version() -> str:
    """The installed version, from its dist-info folder's name (importlib.metadata would
    load the email package for it: ~4 MB in every afrender and executor)."""
    for entry in sys.path:
        with contextlib.suppress(OSError):
            for found in Path(entry or ".").glob("afanasy_py-*.dist-info"):
                return found.name.removeprefix("afanasy_py-").removesuffix(".dist-info")
    return "dev"


def local_address(host: str, port: int) -> str:
    """The address this host uses to reach the server (a UDP connect sends no packet)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((host, port))
            return s.getsockname()[0]
    except OSError:
        return ""


class RenderClient:
    def __init__(
        self,
        cfg: Any,
        name: str,
        server: tuple[str, int],
        ctx: zmq.Context | None = None,
        services: list[str] | None = None,
        max_tasks: int = -1,
    ) -> None:
        self.cfg = cfg
        self.name = name
        self.services = services  # None: whatever the server's pools allow
        self.max_tasks = max_tasks
        self.server = server
        self.servers = [server]  # af_servername's list: tried in turn (move_on)
        self.endpoint = P.endpoint(*server)
        self.ctx = ctx or zmq.Context.instance()
        self.meter = ResourceMeter()
        self.hddspace_path = cfg["af_render_hddspace_path"] or "/"
        self.id = 0  # 0 = not registered
        self.heartbeat_sec = float(cfg["af_render_heartbeat_sec"])
        self.alive = watchdog.beat_from_env()  # afserver watches its executors' loops
        self.resources_period = int(cfg["af_render_up_resources_period"])
        self.zombie_time = float(cfg["af_render_zombietime"])
        self.beats = 0
        self.events_seen = 0  # the last push ("seq") applied; echoed so lost starts are proven
        self.last_reply = 0.0
        self.next_register = 0.0
        self.register_attempts = 0  # unanswered in a row: their pauses grow (pace.py)
        self.beat_sent: float | None = None  # the heartbeat in flight, while unanswered
        self.beat_request = 0
        self.silence_said = False
        self.random = random.Random()
        self.pending: dict[int, int] = {}  # request id -> message type, for replies
        self._ids = 0
        self.running = False
        self.time_launch = time.time()
        self.tasks = TaskManager(
            store_dir=Path(cfg["af_store_folder"]) / "render" / name,
            cmd_shell=cfg["cmd_shell"],
            nice=int(cfg["af_render_nice"]),
            output_limit=int(cfg["af_render_task_read_buffer_size"]),
            kill_wait=float(cfg["af_render_task_kill_wait"]),
            events_service=str(cfg["af_sysjob_events_service"]),
            postcmd_service=str(cfg["af_sysjob_postcmd_service"]),
        )
        self.curve = curve.client_keys(cfg)  # af_auth: this render's key, else None
        self.next_trouble_log = 0.0
        self.socket = self._connect()

    def _connect(self) -> zmq.Socket:
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.IDENTITY, f"R:{self.name}:{uuid.uuid4().hex[:12]}".encode())
        s.setsockopt(zmq.IMMEDIATE, 1)  # no queueing of heartbeats while the server is away
        s.setsockopt(zmq.SNDHWM, 100)
        s.setsockopt(zmq.RECONNECT_IVL, 200)
        s.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        curve.secure_client(s, self.curve)
        self.monitor = s.get_monitor_socket(curve.HANDSHAKE_FAILED)  # refused keys, said below
        s.connect(self.endpoint)
        self.connected_at = time.monotonic()
        return s

    def move_on(self, now: float, why: str) -> bool:
        """The next server of the list, when this one is down or a standby: the active
        afserver of a shared store may have changed. False with a single server."""
        if len(self.servers) < 2 or now - self.connected_at < MOVE_ON_GRACE_SEC:
            return False
        self.server = self.servers[(self.servers.index(self.server) + 1) % len(self.servers)]
        self.endpoint = P.endpoint(*self.server)
        log.warning("%s: trying %s", why, self.endpoint)
        self.socket.disable_monitor()
        self.monitor.close(0)
        self.socket.close(0)
        self.socket = self._connect()
        self.pending.clear()
        self.id = 0  # registered again there, with the tasks running here
        self.beat_sent = None
        self.register_attempts = 0  # a new server: its pauses start again
        self.next_register = now + MOVE_ON_GRACE_SEC / 4
        return True

    # --- sending -------------------------------------------------------------------------

    def _send(self, msg_type: int, body: Any) -> bool:
        self._ids = (self._ids + 1) & P.MAX_REQUEST_ID or 1
        try:
            self.socket.send_multipart(P.message(msg_type, body, self._ids), zmq.NOBLOCK)
        except zmq.Again:
            return False  # not connected: the server is down or unreachable
        self.pending[self._ids] = msg_type
        if len(self.pending) > 1000:  # answers that never came: forget the oldest
            for key in list(self.pending)[:500]:
                del self.pending[key]
        return True

    def registration(self) -> dict[str, Any]:
        host, port = self.server
        return {
            "name": self.name,
            "user_name": caller_identity()["user_name"],
            "os": os_string(),
            "engine": version(),
            "address": local_address(host, port),
            "host": host_info(self.hddspace_path),
            "host_resources": self.meter.snapshot(self.hddspace_path),
            "netifs": net_interfaces(),
            "time_launch": self.time_launch,
            **self._own_settings(),
            "tasks": self.tasks.reports(time.monotonic(), resend_after=0.0),
            "events_seen": self.events_seen,  # a restarted server numbers its pushes above it
        }

    def _handshake_trouble(self, now: float) -> None:
        """Say why the server stays silent when the handshake is what fails (keys)."""
        events = 0
        while True:
            try:
                events |= P.monitor_event(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                break
        trouble = curve.handshake_trouble(events, self.curve is not None)
        if trouble and now >= self.next_trouble_log:
            log.error("cannot connect to %s: %s", self.endpoint, trouble)
            self.next_trouble_log = now + TROUBLE_LOG_SEC

    def _own_settings(self) -> dict[str, Any]:
        """Services and task slots this afrender sets for itself (system-job executors)."""
        own: dict[str, Any] = {}
        if self.services is not None:
            own["services"] = self.services
        if self.max_tasks > 0:
            own["max_tasks_host"] = self.max_tasks
            own["capacity_host"] = self.max_tasks * int(self.cfg["af_task_default_capacity"])
        return own

    def beat(self, now: float) -> None:
        """A heartbeat, or a registration while the server does not know us. Task reports go
        at once (RENDER_UPDATE); a beat with nothing new (RENDER_BEAT) waits while the last
        one is unanswered: a busy server gets no pile of them (pace.py)."""
        if not self.id:
            self._handshake_trouble(now)
            if now >= self.next_register:
                self.register_attempts += 1
                if self._send(P.MsgType.RENDER_REGISTER, self.registration()):
                    log.debug("registration sent to %s", self.endpoint)
                elif self.move_on(now, f"server {self.endpoint} unreachable"):
                    return  # the next server, soon (move_on)
                else:
                    log.debug("server %s unreachable; will retry", self.endpoint)
                pause = pace.register_retry(self.register_attempts, self.random.uniform(-1, 1))
                self.next_register = now + max(pause, self.heartbeat_sec)
            return
        if now - self.last_reply > self.zombie_time and not self.silence_said:
            log.warning(
                "no answer from the server for %.0f s: it is busy or away; heartbeats go on",
                now - self.last_reply,
            )
            self.silence_said = True
        reports = self.tasks.reports(now, resend_after=max(2 * self.heartbeat_sec, 1.0))
        if not reports and pace.beat_waits(self.beat_sent, now, self.heartbeat_sec):
            return
        self.beats += 1
        update: dict[str, Any] = {"id": self.id}
        if self.beats % max(1, self.resources_period) == 0:
            update["host_resources"] = self.meter.snapshot(self.hddspace_path)
        if reports:
            update["tasks"] = reports
        update["tasks_held"] = self.tasks.held()
        update["events_seen"] = self.events_seen
        msg_type = P.MsgType.RENDER_UPDATE if reports else P.MsgType.RENDER_BEAT
        if self._send(msg_type, update):
            self.beat_sent, self.beat_request = now, self._ids
        else:
            self.move_on(now, f"server {self.endpoint} unreachable")

    def sleep(self) -> None:
        """The server asks this host to sleep: run af_render_cmd_wolsleep with our address,
        name and MACs, and go on heartbeating until the host is really asleep."""
        host, port = self.server
        macs = [n["mac"] for n in net_interfaces()]
        args = ["--sleep", "--ip", local_address(host, port) or "-", "--hostname", self.name, *macs]
        command = f"{self.cfg['af_render_cmd_wolsleep']} {shlex.join(args)}"
        log.warning("the server asks this host to sleep: %s", command)
        try:
            subprocess.Popen(
                [*shlex.split(self.cfg["cmd_shell"]), command],
                start_new_session=True,
                env={**os.environ, "PATH": with_own_bin(os.environ.get("PATH", ""))},
            )
        except OSError as exc:
            log.error("cannot run the sleep command: %s", exc)

    def send_finals(self, now: float) -> None:
        """A task ended: tell the server now, so the slot is refilled without waiting a beat."""
        if self.id:
            reports = self.tasks.reports(now, resend_after=0.0, finals_only=True)
            if reports:
                self._send(P.MsgType.RENDER_UPDATE, {"id": self.id, "tasks": reports})

    # --- receiving -----------------------------------------------------------------------

    def receive(self, now: float) -> None:
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                header = P.unpack_header(frames[0])
                body = P.unpack_body(frames[1], int(self.cfg["af_message_size_max"]))
            except (P.ProtocolError, IndexError) as exc:
                log.warning("bad message from the server: %s", exc)
                continue
            sent_type = self.pending.pop(header.request_id, None)
            self.last_reply = now
            self.silence_said = False
            if header.request_id == self.beat_request:
                self.beat_sent = None
            if header.type == P.MsgType.ERROR:
                self._on_error(sent_type, body, now)
            elif header.type == P.MsgType.RENDER_EVENTS and isinstance(body, dict):
                self._on_events(body, now)

    def _on_error(self, sent_type: int | None, body: Any, now: float) -> None:
        text = body.get("error", "?") if isinstance(body, dict) else "?"
        code = _code(body)
        if code == P.ErrorCode.STANDBY and self.move_on(now, f"{self.endpoint}: {text}"):
            return
        # busy, or the scheduler went before answering: neither is a refusal of this render
        busy = code in (P.ErrorCode.OVERLOADED, P.ErrorCode.LOST)
        if sent_type == P.MsgType.RENDER_REGISTER:
            pause = (
                pace.register_retry(self.register_attempts, self.random.uniform(-1, 1))
                if busy
                else REFUSED_RETRY_SEC
            )
            log.log(
                logging.INFO if busy else logging.ERROR,
                "registration refused: %s (retrying in %.1f s)",
                text,
                pause,
            )
            self.next_register = now + pause
        elif busy and sent_type in (P.MsgType.RENDER_BEAT, P.MsgType.RENDER_UPDATE):
            log.debug("heartbeat not taken (it goes again): %s", text)
            # the next waits its patience: the server needs room (reports go again)
            self.beat_sent = now
        else:
            log.warning("server error: %s", text)

    def _on_events(self, body: dict[str, Any], now: float) -> None:
        new_id = body.get("id")
        if not isinstance(new_id, int):
            return
        if new_id < 0:
            if self.id:
                log.info(
                    "server does not know this render (%s): registering again",
                    body.get("reason", ""),
                )
                # a restarted server tells every render at once: they do not all come back
                # in the same millisecond
                self.next_register = now + self.random.random()
                self.register_attempts = 0
            self.id = 0
            self.beat_sent = None
            return
        if not self.id:
            log.info("registered as '%s' with id %d", self.name, new_id)
            self.register_attempts = 0
        self.id = new_id
        for task in body.get("tasks_start") or ():
            if isinstance(task, dict):
                self.tasks.start(task, now)
        seq = body.get("seq")
        if isinstance(seq, int) and seq > self.events_seen:
            self.events_seen = seq  # after its starts are held: the echo proves them here
        if body.get("tasks_stop"):
            self.tasks.stop(body["tasks_stop"], now)
        if body.get("tasks_close"):
            self.tasks.close(body["tasks_close"])
        if body.get("instruction") == "exit":
            log.info("the server asks this render to exit")
            self.running = False
        elif body.get("instruction") == "sleep":
            self.sleep()
        for key, attr in (
            ("heartbeat_sec", "heartbeat_sec"),
            ("resources_update_period", "resources_period"),
            ("zombie_time", "zombie_time"),
        ):
            value = body.get(key)
            if isinstance(value, (int, float)) and value > 0:
                value = type(getattr(self, attr))(value)
                if value != getattr(self, attr):
                    log.info("server sets %s to %s", key, value)
                    setattr(self, attr, value)

    # --- loop ----------------------------------------------------------------------------

    def run(self) -> None:
        self.running = True
        log.info("afrender '%s' %s connecting to %s", self.name, version(), self.endpoint)
        next_beat = time.monotonic()
        fds: dict[int, Any] = {}
        poller, polled = self._poller(fds), self.socket
        while self.running:
            deadline = min(next_beat, self.alive.due)
            if self.tasks.running:
                deadline = min(deadline, time.monotonic() + TASK_CHECK_SEC)
            events = dict(poller.poll(max(0, int((deadline - time.monotonic()) * 1000) + 1)))
            now = time.monotonic()
            if self.socket in events:
                self.receive(now)
            for fd, (key, is_pidfd) in fds.items():
                if fd in events:
                    if is_pidfd:
                        self.tasks.exited(key)
                    else:
                        self.tasks.read(key, now)
            if self.tasks.check(now):
                self.send_finals(now)
            current = self.tasks.fds()
            if current != fds or self.socket is not polled:
                fds, polled = current, self.socket
                poller = self._poller(fds)
            if now >= next_beat:
                self.beat(now)
                next_beat = now + self.heartbeat_sec
            self.alive(now)
        self.deregister()

    def _poller(self, fds: dict[int, Any]) -> zmq.Poller:
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        for fd in fds:
            poller.register(fd, zmq.POLLIN)
        return poller

    def deregister(self) -> None:
        self.tasks.kill_all()
        if self.id:
            self._send(P.MsgType.RENDER_DEREGISTER, {"id": self.id})
            deadline = time.monotonic() + DEREGISTER_WAIT_SEC
            while self.pending and time.monotonic() < deadline:
                if self.socket.poll(int((deadline - time.monotonic()) * 1000) + 1):
                    self.receive(time.monotonic())
            log.info("deregistered")
        self.socket.disable_monitor()
        self.monitor.close(0)
        self.socket.close(0)

    def stop(self, *_: Any) -> None:
        self.running = False


def _code(body: Any) -> int | None:
    """The error code of an ERROR reply's body, if it carries one."""
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, int) else None


def main(argv: list[str] | None = None) -> None:
    """Afanasy render client: registers this host with the farm server and heartbeats."""
    args = parser(main.__doc__ or "")
    args.add_argument("--name", help="Render name (default: AF_HOSTNAME or the host name).")
    args.add_argument(
        "--server",
        help="Server as HOST[:PORT], or a comma-separated list of them tried in turn "
        "(default: af_servername:af_serverport).",
    )
    args.add_argument(
        "--service",
        dest="services",
        action="append",
        default=[],
        help="Run only this service (repeatable).",
    )
    args.add_argument(
        "--tasks",
        dest="max_tasks",
        type=int,
        default=-1,
        help="Tasks at once (sets capacity to match).",
    )
    args.add_argument(
        "-v", "--verbose", action="count", default=0, help="More log output (-v debug)."
    )
    given = args.parse_args(argv)
    try:
        cfg = load_config()
    except ConfigError as exc:
        fail(str(exc))
    setup_logging(given.verbose, "afrender")
    try:
        addresses = P.parse_servers(given.server or cfg["af_servername"], cfg["af_serverport"])
    except ValueError as exc:
        args.error(f"--server: {exc}")
    try:
        client = RenderClient(
            cfg,
            render_name(given.name or cfg["af_render_name"]),
            addresses[0],
            services=given.services or None,
            max_tasks=given.max_tasks,
        )
        client.servers = addresses
    except AuthError as exc:
        fail(str(exc))
    signal.signal(signal.SIGTERM, client.stop)
    signal.signal(signal.SIGINT, client.stop)
    client.run()
    sys.exit(0)


if __name__ == "__main__":
    main()
