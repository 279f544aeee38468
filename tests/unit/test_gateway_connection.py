"""gateway.main.Connection on a fake transport: the stages of one request, the lease given
back, a client that closes while its answer is made, and what comes after a request."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gateway.main import Connection, Gateway, Settings


class FakeLink:
    on_push: Any = None


class FakeTransport:
    def __init__(self, protocol: Connection) -> None:
        self.protocol = protocol
        self.written = b""
        self.closed = self.aborted = self.paused = False

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 5555) if name == "peername" else None

    def write(self, data: bytes) -> None:
        self.written += data

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def close(self) -> None:
        self.closed = True
        asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)


def gateway(timeout: float = 5.0) -> Gateway:
    settings = Settings(None, 0, "", 1 << 20, timeout, 1.0)
    return Gateway(settings, FakeLink())  # type: ignore[arg-type]


def request(obj: Any) -> bytes:
    body = json.dumps(obj).encode()
    return b"AFANASY %d JSON" % len(body) + body


def test_a_request_in_pieces_answered_then_closed_by_the_client() -> None:
    async def scenario() -> None:
        g = gateway()
        release = asyncio.Event()

        async def answer(req: Any, source: str = "") -> dict[str, Any]:
            await release.wait()
            return {"echo": req, "from": source}

        g.answer = answer  # type: ignore[method-assign]
        conn = g.protocol()
        transport = FakeTransport(conn)
        conn.connection_made(transport)  # type: ignore[arg-type]
        raw = request({"get": {"type": "users"}})
        for i in range(0, len(raw), 7):
            conn.data_received(raw[i : i + 7])
        await asyncio.sleep(0)
        assert g.budget.free < g.budget.total  # the request holds its cost while answered
        conn.data_received(b"more")  # after the request: reading pauses until the answer
        assert transport.paused
        release.set()
        for _ in range(3):
            await asyncio.sleep(0)
        assert transport.written.startswith(b"AFANASY ")
        reply = json.loads(transport.written.split(b"JSON", 1)[1])
        assert reply == {"echo": {"get": {"type": "users"}}, "from": "127.0.0.1"}
        assert g.budget.free == g.budget.total and not transport.paused
        assert not transport.closed  # our side waits for the client to close first
        conn.eof_received()
        await asyncio.sleep(0)
        assert transport.closed and not transport.aborted and g.connections == 0

    asyncio.run(scenario())


def test_a_client_that_closes_while_answered_gets_its_answer_then_the_close() -> None:
    async def scenario() -> None:
        g = gateway()
        release = asyncio.Event()

        async def answer(req: Any, source: str = "") -> dict[str, Any]:
            await release.wait()
            return {"ok": True}

        g.answer = answer  # type: ignore[method-assign]
        conn = g.protocol()
        transport = FakeTransport(conn)
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(request({"get": {"type": "jobs"}}))
        await asyncio.sleep(0)
        conn.eof_received()
        assert not transport.closed
        release.set()
        for _ in range(3):
            await asyncio.sleep(0)
        assert b'"ok":true' in transport.written
        assert transport.closed and not transport.aborted
        assert g.budget.free == g.budget.total and g.connections == 0

    asyncio.run(scenario())


def test_cut_short_silent_and_slow_clients() -> None:
    async def scenario() -> None:
        g = gateway(timeout=0.05)
        cut = g.protocol()
        cut_t = FakeTransport(cut)
        cut.connection_made(cut_t)  # type: ignore[arg-type]
        cut.data_received(b"AFANASY 100 JSON{")
        cut.eof_received()  # the body ends before its length: an error reply, then closed
        for _ in range(3):
            await asyncio.sleep(0)
        assert b"ended before its length" in cut_t.written and cut_t.closed
        cut_http = g.protocol()
        http_t = FakeTransport(cut_http)
        cut_http.connection_made(http_t)  # type: ignore[arg-type]
        cut_http.data_received(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
        cut_http.eof_received()  # its error reply in the framing its head came in
        for _ in range(3):
            await asyncio.sleep(0)
        assert http_t.written.startswith(b"HTTP/1.1 ") and b"ended before its length" in (
            http_t.written
        )
        silent = g.protocol()
        silent_t = FakeTransport(silent)
        silent.connection_made(silent_t)  # type: ignore[arg-type]
        silent.eof_received()  # closed without a word: closed, nothing written
        slow = g.protocol()
        slow_t = FakeTransport(slow)
        slow.connection_made(slow_t)  # type: ignore[arg-type]
        slow.data_received(b"AFANASY 10 JSON{")
        await asyncio.sleep(0.1)  # no whole request by the deadline: reset
        assert slow_t.aborted and not slow_t.written
        assert silent_t.closed and not silent_t.written
        assert g.counters["dropped"] == 1 and g.connections == 0
        assert g.budget.free == g.budget.total

    asyncio.run(scenario())
