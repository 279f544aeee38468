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

from broker.protocol import endpoint, local_host
from gateway import framing, translate
from gateway.link import BrokerLink
from workers import watchdog

log = logging.getLogger("gateway")

READ_CHUNK = 256 * 1024
STEPS_MAX = 64  # requests of ours one request of the original may take
BACKLOG = 1024
BUFFERED_BODIES = 4  # bodies of af_message_size_max buffered at once, over all connections
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close sends RST, leaves no TIME-WAIT


@dataclass(frozen=True, slots=True)
class Settings:
    host: str | None
    port: int
    broker: str
    message_size_max: int
    timeout: float  # to receive a request, and for the client to close after its answer
    request_timeout: float  # for our server to answer one request of ours


def settings_from_config(cfg: Any) -> Settings:
    bind = str(cfg["af_server_bind_address"])
    host = bind or ("0.0.0.0" if cfg["af_ipv6_disable"] else None)
    return Settings(
        host=host,
        port=int(cfg["af_gateway_port"]),
        broker=endpoint(local_host(bind), int(cfg["af_serverport"])),
        message_size_max=int(cfg["af_message_size_max"]),
        timeout=float(cfg["af_so_server_RCVTIMEO_sec"]),
        request_timeout=float(cfg["af_broker_request_timeout"]) + 2.0,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def reply_bytes(obj: Any) -> bytes:
    """ASCII JSON: the original's client counts the reply length in characters."""
    return json.dumps(obj, default=_jsonable, separators=(",", ":")).encode("ascii")


class Gateway:
    def __init__(self, settings: Settings, link: BrokerLink) -> None:
        self.s = settings
        self.link = link
        self.budget = BUFFERED_BODIES * (settings.message_size_max + framing.HTTP_HEADER_MAX)
        self.counters: dict[str, int] = {"requests": 0, "bad": 0, "dropped": 0, "busy": 0}

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client, one request: never raises, whatever the client sends or does."""
        peer = writer.get_extra_info("peername")
        try:
            if not await self._serve(reader, writer):
                self._reset(writer)
                return
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        except Exception:
            log.exception("connection from %s failed", peer)
            self._reset(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; True when the client closed first (a clean close)."""
        parsed = await self._receive(reader, writer)
        if isinstance(parsed, bool):
            return parsed
        if isinstance(parsed, framing.Bad):
            self.counters["bad"] += 1
            log.info("refused a request from %s: %s", _peer(writer), parsed.text)
            body = reply_bytes(translate.error(parsed.text))
            reply = framing.encode(parsed.framing, body, parsed.status)
        else:
            self.counters["requests"] += 1
            reply = framing.encode(parsed.framing, reply_bytes(await self.answer(parsed.body)))
        writer.write(reply)
        deadline = time.monotonic() + self.s.timeout
        try:
            await asyncio.wait_for(writer.drain(), max(0.0, deadline - time.monotonic()))
        except (TimeoutError, OSError):
            return False
        return await _wait_close(reader, deadline)

    async def _receive(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> framing.Request | framing.Bad | bool:
        """A whole request or why not; False when the time ran out, True when the client
        closed without a word. A large body is read to its announced end before it is parsed
        again, and only while the bodies buffered over all connections stay within budget."""
        deadline = time.monotonic() + self.s.timeout
        data = bytearray()
        reserved = 0
        until = 0  # the whole request's size, once its header told
        try:
            while True:
                if len(data) >= until:
                    parsed = framing.parse(bytes(data), self.s.message_size_max)
                    if not isinstance(parsed, framing.NeedMore):
                        return parsed
                    until = parsed.until
                    if until > READ_CHUNK and not reserved:
                        if until > self.budget:
                            self.counters["busy"] += 1
                            text = "server busy with large requests; retry"
                            return framing.Bad(_framing_of(data), text, 503)
                        reserved = until
                        self.budget -= reserved
                want = min(max(READ_CHUNK, until - len(data)), 16 * READ_CHUNK)
                chunk = await _read(reader, want, deadline)
                if chunk is None:
                    self.counters["dropped"] += 1
                    log.info("dropped %s: no whole request in time", _peer(writer))
                    return False
                if not chunk:
                    if not data.strip():
                        return True
                    text = "the request ended before its length"
                    return framing.Bad(_framing_of(data), text)
                data += chunk
        finally:
            self.budget += reserved

    async def answer(self, body: bytes) -> dict[str, Any]:
        """The reply, in the original's shape, to one request body."""
        try:
            request = json.loads(body, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            return translate.error(f"not valid JSON: {str(exc)[:200]}")
        conversation = translate.conversation(request)
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

    def _reset(self, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        writer.transport.abort()


def _framing_of(data: bytes | bytearray) -> framing.Framing:
    return framing.Framing.HTTP if data.lstrip().startswith(b"POST") else framing.Framing.AFANASY


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


async def _read(reader: asyncio.StreamReader, size: int, deadline: float) -> bytes | None:
    """Up to `size` bytes; b"" at end of stream, None when the deadline passes first."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    try:
        return await asyncio.wait_for(reader.read(size), left)
    except TimeoutError:
        return None
    except OSError:
        return b""


async def _wait_close(reader: asyncio.StreamReader, deadline: float) -> bool:
    """After the answer: discard what still comes until the client closes (True) or the
    deadline passes (False)."""
    while True:
        chunk = await _read(reader, 16 * READ_CHUNK, deadline)
        if chunk is None:
            return False
        if not chunk:
            return True


async def run(settings: Settings) -> None:
    link = BrokerLink(settings.broker, settings.request_timeout, settings.message_size_max)
    link.start()
    gateway = Gateway(settings, link)
    server = await asyncio.start_server(
        gateway.connection,
        settings.host,
        settings.port,
        backlog=BACKLOG,
        reuse_address=True,
        limit=READ_CHUNK,
    )
    alive = asyncio.create_task(watchdog.beat_forever(watchdog.beat_from_env()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "gateway on port %d for the original's clients (broker %s)", settings.port, settings.broker
    )
    await stop.wait()
    alive.cancel()
    server.close()
    log.info("gateway stopped: %s", gateway.counters)
    link.close()


def raise_open_files_limit() -> None:
    """Each waiting client holds a descriptor: allow as many as the system lets us."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    """Run the gateway as its own process (afserver starts it when af_gateway_port > 0)."""
    from config import load_config
    from config.logs import setup_logging, verbosity_from_env

    cfg = load_config()
    setup_logging(verbosity_from_env(), "gateway")
    raise_open_files_limit()
    settings = settings_from_config(cfg)
    try:
        asyncio.run(run(settings))
    except OSError as exc:  # the port taken, or the address not ours
        log.critical("gateway cannot listen on port %d: %s", settings.port, exc)
        sys.exit(2)


if __name__ == "__main__":
    main()
