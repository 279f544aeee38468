"""The web process's front door (pure ASGI): every request passes here before any route.

- a state-changing request must be same-origin and carry JSON (or, for a form, our form
  type; the form checks its anti-forgery token itself): see `web.origins`;
- bound to loopback, it answers only requests addressed to loopback (or a trusted origin's
  host): another site's name made to resolve to 127.0.0.1 (DNS rebinding) is refused;
- a token in the query is refused except on the event stream (an EventSource cannot send
  headers), so tokens stay out of URLs, histories and proxy logs;
- the body is bounded: a declared Content-Length over the limit is refused before a byte
  is read, a body without one is counted while it streams, and the app gets the whole body
  at once, so N parallel maximal bodies cost about N times the limit;
- every 4xx answer is noted (told once per peer and kind, then counted).
"""

from __future__ import annotations

import ctypes
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from web import origins
from web.farm_api import EVENTS_PATH
from web.refusals import NOTED, RefusalLog

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]

FORM_MAX = 64 * 1024  # the statistics pages take small forms and JSON objects only
DIGITS = re.compile(r"[0-9]+")
TRIM_BYTES = 1024 * 1024  # after a body this big, freed memory goes back to the system
_LIBC = ctypes.CDLL(None)


class _TooBig(Exception):
    pass


def release_memory() -> None:
    """Give freed heap pages back to the system. A body arrives in 64 KiB pieces; in
    glibc's heap the pieces of a few big bodies left the web hundreds of MB larger after
    they were freed (a block still in use above them keeps the heap from shrinking)."""
    trim = getattr(_LIBC, "malloc_trim", None)  # glibc only
    if trim is not None:
        trim(0)


def body_limit(path: str, default: int) -> int:
    return FORM_MAX if path.startswith(("/stats", "/api/stats/")) else default


def _has_token(query_string: bytes) -> bool:
    return any(k == "token" for k, _ in parse_qsl(query_string.decode("latin-1"), True))


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        refusals: RefusalLog,
        body_max: int,
        trusted: frozenset[origins.Origin] = frozenset(),
        hosts: frozenset[str] | None = None,
    ) -> None:
        """`hosts`: the Host names answered (None: any), see `origins.loopback_hosts`."""
        self.app = app
        self.hosts = hosts
        self.refusals = refusals
        self.body_max = body_max
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        peer = scope["client"][0] if scope.get("client") else "?"
        what = f"{scope['method']} {scope['path']}"[:200]

        async def refuse(status: int, kind: str, text: str, table: bool = True) -> None:
            self.refusals.note(peer, kind, text, what, table=table)
            body = json.dumps({"error": text}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        refusal = origins.host_refusal(headers.get("host", ""), self.hosts)
        if refusal:
            await refuse(400, "host", refusal)
            return
        if scope["path"] != EVENTS_PATH and _has_token(scope.get("query_string", b"")):
            text = "a token in the URL is refused: send it as Authorization: Bearer <token>"
            await refuse(400, "token in URL", text)
            return
        if scope["method"] in origins.UNSAFE_METHODS:
            own = origins.own_origin(scope.get("scheme", "http"), headers.get("host", ""))
            refusal = origins.origin_refusal(headers, own, self.trusted)
            if refusal:
                await refuse(403, "origin", refusal)
                return
            refusal = origins.content_refusal(scope["path"], headers.get("content-type", ""))
            if refusal:
                await refuse(403, "content type", refusal)
                return

        limit = body_limit(scope["path"], self.body_max)
        declared = headers.get("content-length")
        if declared is not None:
            declared = declared.strip()
            if not DIGITS.fullmatch(declared):
                await refuse(400, "400", "Content-Length: expected a number of bytes", False)
                return
            if len(declared) > 18 or int(declared) > limit:
                await refuse(413, "413", f"request body over {limit} bytes", False)
                return
        try:
            body = await self._body(receive, limit)
        except _TooBig:
            release_memory()
            await refuse(413, "413", f"request body over {limit} bytes", False)
            return
        if body is None:
            return  # the client left before its body was whole: nothing to answer
        whole = [{"type": "http.request", "body": body, "more_body": False}]
        big = len(body) > TRIM_BYTES
        del body

        async def replay() -> dict[str, Any]:
            return whole.pop() if whole else await receive()

        async def watch(message: dict[str, Any]) -> None:
            start = message["type"] == "http.response.start"
            if start and 400 <= message["status"] < 500 and not scope.get("state", {}).get(NOTED):
                status = str(message["status"])
                self.refusals.note(peer, status, f"HTTP {status}", what, table=False)
            await send(message)

        try:
            await self.app(scope, replay, watch)
        finally:
            if big:
                whole.clear()
                release_memory()

    @staticmethod
    async def _body(receive: Receive, limit: int) -> bytes | None:
        """The whole body, counted while it streams; None when the client left."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                chunks.clear()  # now: the traceback keeps this frame while the 413 goes
                raise _TooBig
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
