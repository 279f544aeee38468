"""gateway: the original's clients (Python API, afcmd scripts, the web page) on TCP.

One request per connection, as those clients expect: read a whole request within
``af_so_server_RCVTIMEO_sec``, translate it into requests of ours over one broker
connection, answer in the framing it came in, then wait for the client to close first, so
that the TIME-WAIT state stays on the client's side (SPEC B §3). A client that sends no
whole request, or does not close after its answer, within that time is dropped with a
reset, which leaves no TIME-WAIT either. Bad input of any kind gets an error reply and
never takes the process down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass
from typing import Any

from broker.protocol import MsgType, endpoint, local_host
from broker.rarelog import RareLog
from gateway import admin, curve_refusal, files, framing, page, translate, watch
from gateway.body import cost, decoded, values_cost
from gateway.guard import Budget, Lease, trim
from gateway.link import BrokerLink
from workers import watchdog

log = logging.getLogger("gateway")

STEPS_MAX = 64  # requests of ours one request of the original may take
BACKLOG = 1024
CONNECTIONS_MAX = 1024  # served at once; more are reset at once (each may buffer ~0.2 MiB)
# What requests may cost at once, over all connections: BUDGET_BODIES x af_message_size_max
# (+ SMALL_ROOM), each request as gateway.body.cost says: two maximal bodies of few values
# are served at once; more are told to retry.
BUDGET_BODIES = 4
SMALL_BODY = 64 * 1024  # requests up to this cost keep being served while large ones wait
SMALL_ROOM = 16 * 1024 * 1024  # ... from this part of the budget, which large ones leave
TRIM_AFTER = 8 * 1024 * 1024  # a request that cost this much: its freed pages go back
SUMMARY_SEC = 5.0  # repeated faults of one kind: one line, then a count per this period
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close sends RST, leaves no TIME-WAIT


@dataclass(frozen=True, slots=True)
class Settings:
    host: str | None
    port: int
    broker: str
    message_size_max: int
    timeout: float  # to receive a request, and for the client to close after its answer
    request_timeout: float  # for our server to answer one request of ours
    admins: admin.AdminPolicy = admin.NOBODY
    gui_folder: str = ""  # the original's web GUI files, served on GET ("" = none)
    page_config: Any = None  # the page's `get config` answer, made once at start


def settings_from_config(cfg: Any) -> Settings:
    bind = str(cfg["af_server_bind_address"])
    gui = files.gui_folder(str(cfg["af_gateway_gui_folder"] or ""))
    host = bind or ("0.0.0.0" if cfg["af_ipv6_disable"] else None)
    return Settings(
        host=host,
        port=int(cfg["af_gateway_port"]),
        broker=endpoint(local_host(bind), int(cfg["af_serverport"])),
        message_size_max=int(cfg["af_message_size_max"]),
        timeout=float(cfg["af_so_server_RCVTIMEO_sec"]),
        request_timeout=float(cfg["af_broker_request_timeout"]) + 2.0,
        admins=admin.policy_from_config(cfg),
        gui_folder=gui,
        page_config=page.config_reply(gui, cfg.values),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON")


def reply_bytes(obj: Any) -> bytes:
    """ASCII JSON: the original's client counts the reply length in characters."""
    return json.dumps(obj, default=_jsonable, separators=(",", ":")).encode("ascii")


class Gateway:
    def __init__(self, settings: Settings, link: BrokerLink) -> None:
        self.s = settings
        self.link = link
        total = BUDGET_BODIES * settings.message_size_max + SMALL_ROOM
        self.budget = Budget(total, keep=SMALL_ROOM, small=SMALL_BODY)
        self.faults = RareLog(log, SUMMARY_SEC, logging.INFO)
        self.refusals = RareLog(log, SUMMARY_SEC, logging.WARNING)
        self.pages = watch.Pages()  # the original's web pages watching through us
        self.watching = False  # registered as a monitor of our scheduler
        link.on_push = self.pages.fold
        self.connections = 0
        self.answering: set[asyncio.Task[None]] = set()  # the answers being made
        self.counters: dict[str, int] = {
            "requests": 0,
            "files": 0,
            "bad": 0,
            "dropped": 0,
            "busy": 0,
        }

    def protocol(self) -> Connection:
        """The protocol of one client's connection (loop.create_server's factory)."""
        return Connection(self)

    async def reply_to(
        self, parsed: framing.Request | framing.Get | framing.Bad, source: str, lease: Lease
    ) -> bytes:
        """The bytes that answer one whole request (or say why it is none) from `source`."""
        if isinstance(parsed, framing.Get):
            self.counters["files"] += 1
            got = await asyncio.to_thread(
                files.serve, self.s.gui_folder, parsed.target, files.FILE_MAX, lease.take
            )
            return framing.encode_file(got.status, got.content_type, got.body)
        if isinstance(parsed, framing.Bad):
            self.counters["bad"] += 1
            self.faults.say(f"refused: {parsed.kind}", parsed.text, source)
            body = reply_bytes(translate.error(parsed.text))
            return framing.encode(parsed.framing, body, parsed.status)
        self.counters["requests"] += 1
        how = parsed.framing
        request, refusal = decoded(parsed.body)  # type: ignore[arg-type]
        del parsed  # the body: only what was decoded from it stays while we answer
        answer = refusal or await self.answer(request, source)
        del request
        return framing.encode(how, reply_bytes(answer))

    def _busy(self, how: framing.Framing, size: int) -> framing.Bad:
        """A request over what the budget has free now: retry; over all of it: never."""
        self.counters["busy"] += 1
        if size > self.budget.total - self.budget.keep:
            mib = (self.budget.total - self.budget.keep) >> 20
            text = f"request too large to decode here: its values would take over {mib} MiB"
            return framing.Bad(how, text, 413, "too many values")
        return framing.Bad(how, "server busy with large requests; retry", 503, "busy")

    def _dropped(self, transport: asyncio.BaseTransport) -> None:
        self.counters["dropped"] += 1
        text = f"{_peer(transport)} sent no whole request within {self.s.timeout:g} s"
        self.faults.say("dropped", text, _host(transport))

    def _cut_short(self, how: framing.Framing) -> framing.Bad:
        return framing.Bad(how, "the request ended before its length", kind="cut")

    async def answer(self, request: Any, source: str = "") -> dict[str, Any]:
        """The reply, in the original's shape, to one decoded request from `source`."""
        watched = await self._watch_request(request, source)
        if watched is not None:
            return watched
        reply = await self._answer(request, source)
        refused = translate.refused_action(request, reply)
        if refused is not None:
            kind = request["action"].get("type")
            kind = kind if kind in ("jobs", "renders", "users", "pools") else "other"
            self.refusals.say(f"refused {kind} action", refused, source)
        return reply

    async def _watch_request(self, request: Any, source: str) -> dict[str, Any] | None:
        """The web page's own requests: monitor (gateway.watch), config and files
        (gateway.page); None for any other."""
        if not isinstance(request, dict):
            return None
        now = time.time()
        if "monitor" in request:
            uid = await self._uid_of(request["monitor"])
            reply = self.pages.register(request["monitor"], source, now, uid)
            if reply["monitor"]["id"]:
                await self.keep_watching()
            return reply
        get = request.get("get")
        if isinstance(get, dict) and get.get("type") == "config":
            return self.s.page_config or page.config_reply(self.s.gui_folder, {})
        if isinstance(get, dict) and get.get("type") == "files":
            return await asyncio.to_thread(page.files_reply, self.s.gui_folder, get.get("path"))
        if isinstance(get, dict) and get.get("type") == "monitors":
            ids = get.get("ids")
            if get.get("mode") == "events" and isinstance(ids, list) and len(ids) == 1:
                page_id = ids[0]
                if isinstance(page_id, int) and not isinstance(page_id, bool):
                    return self.pages.events(page_id, now)
                return {"monitor": {"id": 0}}
            return {"monitors": [p.to_json() for p in self.pages.by_id.values()]}
        act = request.get("action")
        if isinstance(act, dict) and act.get("type") == "monitors":
            return {}  # subscriptions: every page here gets every kind of event
        return None

    async def _uid_of(self, monitor: Any) -> int:
        """The id of our user a registering page names, as the original's server gives its
        monitor (the page then acts as that user); -1 when there is none (yet)."""
        name = monitor.get("user_name") if isinstance(monitor, dict) else None
        if not isinstance(name, str) or not name:
            return -1
        try:
            reply = await self.link.request({"get": {"type": "users"}, "user_name": name})
        except translate.Refusal as exc:
            self.faults.say("monitor", f"users not known for a page's uid: {exc.text}")
            return -1
        return translate.user_id(reply, name)

    async def keep_watching(self) -> None:
        """Be our scheduler's monitor while pages watch (the registration is its heartbeat)."""
        self.pages.expire(time.time())
        try:
            if self.pages.by_id:
                hello = {"user_name": "gateway", "host_name": socket.gethostname().lower()}
                await self.link.request(hello, MsgType.MONITOR_REGISTER)
                self.watching = True
            elif self.watching:
                await self.link.request({}, MsgType.MONITOR_DEREGISTER)
                self.watching = False
        except translate.Refusal as exc:
            self.faults.say("monitor", f"our scheduler refused the monitor: {exc.text}")

    async def tend(self) -> None:
        """Every SUMMARY_SEC: the summaries of repeated faults, and our scheduler's monitor
        kept while pages watch."""
        while True:
            await asyncio.sleep(SUMMARY_SEC)
            self.faults.flush()
            self.refusals.flush()
            await self.keep_watching()

    async def _answer(self, request: Any, source: str) -> dict[str, Any]:
        site = self.s.admins
        conversation = translate.conversation(
            request, lambda user: admin.acts_as_admin(site, user, source)
        )
        try:
            ask = next(conversation)
            for _ in range(STEPS_MAX):
                try:
                    reply = await self.link.request(ask)
                except translate.Refusal as exc:
                    ask = conversation.throw(exc)
                else:
                    ask = conversation.send(reply)
            return translate.error("request needs too many steps")
        except StopIteration as done:
            return done.value
        except translate.Refusal as exc:
            return translate.error(exc.text)
        except Exception as exc:  # a reply we did not expect: answer it, keep serving
            log.exception("translating %.200r failed", request)
            return translate.error(f"gateway error: {exc!r}")


# a connection's stages: its header, its body, its answer, then the client's close
_HEAD, _BODY, _ANSWER, _CLOSING, _DONE = range(5)


class Connection(asyncio.Protocol):
    """One client, one request, as callbacks of the event loop: the bytes as they come,
    no stream, no task but the answer's, one timer for each deadline. Never raises,
    whatever the client sends or does.

    Its header is judged first; its body then goes into one buffer of its announced size,
    its cost taken from the budget first, and its values' cost once it is whole. The answer
    written, the client is to close first within af_so_server_RCVTIMEO_sec; what it sends
    meanwhile is discarded. A client that sends no whole request, or does not close after
    its answer, within that time is dropped with a reset."""

    def __init__(self, gateway: Gateway) -> None:
        self.g = gateway
        self.transport: asyncio.Transport | None = None
        self.stage = _HEAD
        self.data = bytearray()  # the header's bytes (and whatever came with them)
        self.head: framing.Head | None = None
        self.body: bytearray | None = None
        self.filled = 0
        self.eof = False
        self.paused = False
        self.counted = False  # in gateway.connections
        self.lease: Lease | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        g = self.g
        if g.connections >= CONNECTIONS_MAX:
            g.counters["busy"] += 1
            g.faults.say("busy: too many connections", "reset", _host(transport))
            self._reset()
            return
        g.connections += 1
        self.counted = True
        self.lease = g.budget.lease()
        self.timer = asyncio.get_running_loop().call_later(g.s.timeout, self._expired)

    def data_received(self, data: bytes) -> None:
        try:
            if self.stage == _HEAD:
                self.data += data
                self._parse()
            elif self.stage == _BODY:
                self._fill(data)
            elif self.stage == _ANSWER and not self.paused:
                self.paused = True  # nothing more is read until the answer is written
                self.transport.pause_reading()  # type: ignore[union-attr]
        except Exception:
            log.exception("connection from %s failed", _peer(self.transport))
            self._reset()

    def eof_received(self) -> bool:
        self.eof = True
        if self.stage == _HEAD:
            if self.data.strip():
                self._answer(self.g._cut_short(_framing_of(self.data)))
            else:  # closed without a word
                self._close()
        elif self.stage == _BODY:  # in the framing its head came in
            self._answer(self.g._cut_short(self.head.framing))  # type: ignore[union-attr]
        elif self.stage == _CLOSING:
            self._close()
        return True  # the transport stays open: closed here once the answer is written

    def connection_lost(self, exc: Exception | None) -> None:
        answering = self.stage == _ANSWER
        self.stage = _DONE
        if self.timer is not None:
            self.timer.cancel()
        if self.counted:
            self.counted = False
            self.g.connections -= 1
        self.data = bytearray()
        self.body = None
        if not answering:  # else the answer gives the lease back once it is made
            self._release()

    def _parse(self) -> None:
        g = self.g
        head = framing.parse(self.data, g.s.message_size_max)
        if isinstance(head, (framing.Bad, framing.Get)):
            self._answer(head)
            return
        if not isinstance(head, framing.Head):
            return  # not a whole header yet
        if not self.lease.take(cost(head.length)):  # type: ignore[union-attr]
            self._answer(g._busy(head.framing, cost(head.length)))
            return
        self.head = head
        self.body = bytearray(head.length)
        self.stage = _BODY
        data, self.data = self.data, bytearray()
        with memoryview(data) as view:
            self._fill(view[head.start : head.start + head.length])

    def _fill(self, chunk: bytes | memoryview) -> None:
        body, head = self.body, self.head
        assert body is not None and head is not None
        take = min(len(chunk), head.length - self.filled)
        body[self.filled : self.filled + take] = chunk[:take]
        self.filled += take
        if self.filled < head.length:
            return
        self.body = None
        extra = values_cost(body)
        if not self.lease.take(extra, into_kept=True):  # type: ignore[union-attr]
            size = self.lease.held + extra  # type: ignore[union-attr]
            self._release()  # at once, so that another large request waiting gets the room
            self._answer(self.g._busy(head.framing, size))
            return
        self._answer(framing.Request(head.framing, body))

    def _answer(self, parsed: framing.Request | framing.Get | framing.Bad) -> None:
        """The request is whole (or never will be): answer it in a task of its own; the
        receiving deadline no longer runs."""
        self.stage = _ANSWER
        self.data = bytearray()
        self.body = None
        if self.timer is not None:
            self.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._reply(parsed))
        self.g.answering.add(task)
        task.add_done_callback(self.g.answering.discard)

    async def _reply(self, parsed: framing.Request | framing.Get | framing.Bad) -> None:
        try:
            try:
                assert self.lease is not None
                making = self.g.reply_to(parsed, _host(self.transport), self.lease)
                del parsed  # the body: the answer's own frame lets go of it once decoded
                reply = await making
            finally:
                self._release()
            if self.stage != _ANSWER:
                return  # the client went away meanwhile
            self.transport.write(reply)  # type: ignore[union-attr]
            del reply
            self.stage = _CLOSING
            self.timer = asyncio.get_running_loop().call_later(self.g.s.timeout, self._expired)
            if self.eof:
                self._close()
            elif self.paused:
                self.paused = False
                self.transport.resume_reading()  # type: ignore[union-attr]
        except Exception:
            log.exception("connection from %s failed", _peer(self.transport))
            self._reset()

    def _release(self) -> None:
        if self.lease is None:
            return
        large = self.lease.held >= TRIM_AFTER
        self.lease.release()
        if large:
            trim()

    def _expired(self) -> None:
        """A deadline passed: no whole request, or no close after the answer."""
        if self.stage in (_HEAD, _BODY):
            self.g._dropped(self.transport)  # type: ignore[arg-type]
        self._reset()

    def _close(self) -> None:
        """The client closed first: close our side once the answer is out (the timer
        still runs: a client that closed but reads nothing more is reset then)."""
        if self.stage == _DONE:
            return
        self.stage = _DONE
        self.transport.close()  # type: ignore[union-attr]

    def _reset(self) -> None:
        """Drop the connection with a reset, which leaves no TIME-WAIT on our side."""
        transport = self.transport
        if self.stage != _ANSWER:
            self.stage = _DONE
        sock = transport.get_extra_info("socket")  # type: ignore[union-attr]
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        transport.abort()  # type: ignore[union-attr]


def _framing_of(data: bytes | bytearray) -> framing.Framing:
    return framing.Framing.HTTP if data.lstrip().startswith(b"POST") else framing.Framing.AFANASY


def _host(transport: asyncio.BaseTransport | None) -> str:
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


def _peer(transport: asyncio.BaseTransport | None) -> str:
    peer = transport.get_extra_info("peername") if transport is not None else None
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


@dataclass(slots=True)
class Serving:
    """A started gateway: its listening server and its loop of summaries and watching."""

    gateway: Gateway
    server: asyncio.Server
    tending: asyncio.Task[None]

    async def stop(self) -> None:
        self.tending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.tending
        self.server.close()
        self.gateway.faults.flush(everything=True)
        self.gateway.refusals.flush(everything=True)
        log.info("gateway stopped: %s", self.gateway.counters)
        self.gateway.link.close()


async def start(settings: Settings) -> Serving:
    """The gateway serving on the running loop; OSError (nothing left open) when it cannot
    listen on its port."""
    link = BrokerLink(settings.broker, settings.request_timeout, settings.message_size_max)
    gateway = Gateway(settings, link)
    try:
        server = await asyncio.get_running_loop().create_server(
            gateway.protocol,
            settings.host,
            settings.port,
            backlog=BACKLOG,
            reuse_address=True,
        )
    except OSError:
        link.close()
        raise
    link.start()
    log.info(
        "gateway on port %d for the original's clients (broker %s)", settings.port, settings.broker
    )
    return Serving(gateway, server, asyncio.create_task(gateway.tend()))


async def run(settings: Settings) -> None:
    """The gateway as its own process, until SIGTERM or SIGINT."""
    serving = await start(settings)
    alive = asyncio.create_task(watchdog.beat_forever(watchdog.beat_from_env()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    alive.cancel()
    await serving.stop()


class InWeb:
    """The gateway on the web process's event loop (gateway_in_web): web.serve starts it
    before uvicorn and stops it after. One that may not run (curve_refusal) or cannot listen
    says why and leaves the web serving alone."""

    name = "the gateway"

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.serving: Serving | None = None

    async def start(self) -> bool:
        settings = prepared(self.cfg, "; the web serves alone")
        if settings is None:
            return False
        try:
            self.serving = await start(settings)
        except OSError as exc:
            cannot_listen(settings, exc, "; the web serves alone")
            return False
        return True

    async def stop(self) -> None:
        if self.serving is not None:
            await self.serving.stop()
            self.serving = None


def prepared(cfg: Any, then: str = "") -> Settings | None:
    """The gateway's settings, the open files limit raised for it; None when it may not run
    beside af_auth (curve_refusal), logged with `then` (what the process does instead)."""
    refusal = curve_refusal(cfg)
    if refusal:
        log.critical("gateway not started: %s%s", refusal, then)
        return None
    raise_open_files_limit()
    return settings_from_config(cfg)


def cannot_listen(settings: Settings, exc: OSError, then: str = "") -> None:
    """The port taken, or the address not ours."""
    log.critical("gateway cannot listen on port %d: %s%s", settings.port, exc, then)


def raise_open_files_limit() -> None:
    """Each waiting client holds a descriptor: allow as many as the system lets us."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    """Run the gateway as its own process (afserver starts it when af_gateway_port > 0 and
    the web is off: gateway_in_web)."""
    from config import load_config
    from config.logs import setup_logging, verbosity_from_env

    cfg = load_config()
    setup_logging(verbosity_from_env(), "gateway")
    settings = prepared(cfg)
    if settings is None:
        sys.exit(2)
    try:
        asyncio.run(run(settings))
    except OSError as exc:
        cannot_listen(settings, exc)
        sys.exit(2)


if __name__ == "__main__":
    main()
