"""gateway.main.Connection on real loopback TCP: the stages of one request, the lease given
back, a client that closes while its answer is made, what comes after a request, and the
clients that never send a whole one. The answer itself is held by the test (the scheduler's
part is tested elsewhere), so each stage can be looked at while it lasts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.link import BrokerLink
from gateway.main import Connection, Gateway, Settings

WAIT_SEC = 5.0


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, timeout: float = 5.0
) -> AsyncIterator[tuple[Gateway, int, list[Connection]]]:
    """A gateway listening on a free loopback port (its broker link never started: the
    answers are the test's), and the connections it made, in order."""
    settings = Settings("127.0.0.1", 0, "", 1 << 20, timeout, 1.0)
    link = BrokerLink(f"ipc://{tmp_path}/broker", 1.0, 1 << 20)
    g = Gateway(settings, link)
    made: list[Connection] = []

    def factory() -> Connection:
        made.append(g.protocol())
        return made[-1]

    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    try:
        yield g, server.sockets[0].getsockname()[1], made
    finally:
        server.close()
        await server.wait_closed()
        link.close()


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SEC
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WAIT_SEC:g} s: {what}")
        await asyncio.sleep(0.005)


def held_answer(g: Gateway, reply: dict[str, Any] | None = None) -> asyncio.Event:
    """The gateway's answers wait for the returned event; each echoes its request and
    source unless `reply` is given."""
    release = asyncio.Event()

    async def answer(req: Any, source: str = "") -> dict[str, Any]:
        await release.wait()
        return reply if reply is not None else {"echo": req, "from": source}

    g.answer = answer  # type: ignore[method-assign]
    return release


def request(obj: Any) -> bytes:
    body = json.dumps(obj).encode()
    return b"AFANASY %d JSON" % len(body) + body


async def read_reply(reader: asyncio.StreamReader) -> Any:
    head = await asyncio.wait_for(reader.readuntil(b"JSON"), WAIT_SEC)
    size = int(head.split()[-2])
    return json.loads(await asyncio.wait_for(reader.readexactly(size), WAIT_SEC))


async def rest(reader: asyncio.StreamReader) -> bytes:
    """What the gateway still sends, up to its close: a reset raises ConnectionResetError."""
    return await asyncio.wait_for(reader.read(), WAIT_SEC)


def test_a_request_in_pieces_answered_then_closed_by_the_client(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as (g, port, made):
            release = held_answer(g)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            raw = request({"get": {"type": "users"}})
            for i in range(0, len(raw), 7):
                writer.write(raw[i : i + 7])
                await writer.drain()
            await until(lambda: g.budget.free < g.budget.total, "the request holds its cost")
            conn = made[0]
            writer.write(b"more")  # after the request: reading pauses until the answer
            await until(lambda: not conn.transport.is_reading(), "reading paused")  # type: ignore[union-attr]
            release.set()
            reply = await read_reply(reader)
            assert reply == {"echo": {"get": {"type": "users"}}, "from": "127.0.0.1"}
            await until(lambda: g.budget.free == g.budget.total, "the lease given back")
            assert conn.transport.is_reading()  # type: ignore[union-attr]
            assert not conn.transport.is_closing()  # type: ignore[union-attr]  # client first
            writer.write_eof()
            assert await rest(reader) == b""  # then our side closes, cleanly (no reset)
            await until(lambda: g.connections == 0, "the connection counted out")
            writer.close()

    asyncio.run(scenario())


def test_a_client_that_closes_while_answered_gets_its_answer_then_the_close(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as (g, port, made):
            release = held_answer(g, {"ok": True})
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request({"get": {"type": "jobs"}}))
            await until(lambda: g.budget.free < g.budget.total, "the request being answered")
            writer.write_eof()
            await until(lambda: made[0].eof, "the client's close seen")
            assert not made[0].transport.is_closing()  # type: ignore[union-attr]
            release.set()
            assert b'"ok":true' in await rest(reader)  # the answer, then a clean close
            await until(lambda: g.connections == 0, "the connection counted out")
            assert g.budget.free == g.budget.total
            writer.close()

    asyncio.run(scenario())


def test_cut_short_silent_and_slow_clients(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path, timeout=0.2) as (g, port, _made):
            cut_r, cut_w = await asyncio.open_connection("127.0.0.1", port)
            cut_w.write(b"AFANASY 100 JSON{")
            cut_w.write_eof()  # the body ends before its length: an error reply, then closed
            assert b"ended before its length" in await rest(cut_r)
            http_r, http_w = await asyncio.open_connection("127.0.0.1", port)
            http_w.write(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
            http_w.write_eof()  # its error reply in the framing its head came in
            answer = await rest(http_r)
            assert answer.startswith(b"HTTP/1.1 ") and b"ended before its length" in answer
            silent_r, silent_w = await asyncio.open_connection("127.0.0.1", port)
            silent_w.write_eof()  # closed without a word: closed, nothing written
            assert await rest(silent_r) == b""
            slow_r, slow_w = await asyncio.open_connection("127.0.0.1", port)
            slow_w.write(b"AFANASY 10 JSON{")  # no whole request by the deadline: reset
            with pytest.raises(ConnectionResetError):
                await rest(slow_r)
            await until(lambda: g.connections == 0, "every connection counted out")
            assert g.counters["dropped"] == 1
            assert g.budget.free == g.budget.total
            for w in (cut_w, http_w, silent_w, slow_w):
                w.close()

    asyncio.run(scenario())
