"""A client of the gateway speaking the original's framings, as the original's clients do:
one request per connection, the reply read to its announced length, then the client closes
first. For tests, benchmarks and scripts that want the original's protocol without the
original's code.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from gateway import framing

HTTP_PATH = "/"


class GatewayError(Exception):
    """No whole reply: the connection closed early or the time ran out."""


def request_bytes(obj: Any, how: framing.Framing) -> bytes:
    body = json.dumps(obj).encode()
    if how is framing.Framing.AFANASY:
        return b"AFANASY %d JSON" % len(body) + body
    return (
        f"POST {HTTP_PATH} HTTP/1.1\r\nHost: afanasy\r\nAFANASY: {len(body)}\r\n"
        "Content-Type: application/json\r\n\r\n"
    ).encode() + body


def reply_body(data: bytes, how: framing.Framing) -> tuple[int, bytes] | None:
    """(HTTP status, body) once `data` holds a whole reply; None while it does not."""
    if how is framing.Framing.AFANASY:
        end = data.find(b"JSON")
        if end < 0:
            return None
        length = int(data[:end].split()[1])
        body = data[end + 4 : end + 4 + length]
        return (200, body) if len(body) == length else None
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(v) for k, _, v in (x.partition(":") for x in lines) if k.lower() == "content-length"
    )
    body = data[end + 4 : end + 4 + length]
    return (status, body) if len(body) == length else None


def exchange(
    port: int,
    raw: bytes,
    how: framing.Framing = framing.Framing.AFANASY,
    host: str = "127.0.0.1",
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """Send raw request bytes, read one reply, close first; (HTTP status, decoded JSON)."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(raw)
        data = b""
        while True:
            whole = reply_body(data, how)
            if whole is not None:
                return whole[0], json.loads(whole[1])
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError as exc:
                raise GatewayError(f"no whole reply within {timeout:g} s: {data[:200]!r}") from exc
            if not chunk:
                raise GatewayError(f"connection closed before a whole reply: {data[:200]!r}")
            data += chunk


def send(
    port: int,
    obj: Any,
    how: framing.Framing = framing.Framing.AFANASY,
    host: str = "127.0.0.1",
    timeout: float = 10.0,
) -> Any:
    """One request of the original's kind (``{"job": …}``, ``{"get": …}``, ``{"action": …}``)."""
    return exchange(port, request_bytes(obj, how), how, host, timeout)[1]
