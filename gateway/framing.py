"""The original's two client framings, parsed and written without any I/O (SPEC B §3).

1. ``AFANASY <decimal length> JSON`` then the JSON body of that many bytes (Python API,
   afcmd, scripts); the reply uses the same header, the body right after ``JSON``, because
   the original's client computes the reply length as ``len("AFANASY n JSON") + n``.
2. ``POST`` with an ``AFANASY: <length>`` header and a JSON body (the web page); the reply
   is an HTTP 200 JSON response with ``Connection: close``.
3. ``GET`` of one of the original web page's files (gateway.files serves them).

``parse`` looks at the start of a connection's bytes and says: wait for more, here is a
whole header (where its body starts and how long it is), or this can never become a
request (and why). Nothing here trusts its input: a lying length, a header that never
ends, or a body too large are decided from the header alone, before anything is buffered
for the body, so the reader can allocate the body once, at its announced size.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

AFANASY_MAGIC = b"AFANASY"
HTTP_POST = b"POST "
HTTP_GET = b"GET "
HTTP_METHODS = (b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ")
AFANASY_HEADER_MAX = 64  # "AFANASY " + a length + " JSON" fits in far less
HTTP_HEADER_MAX = 64 * 1024
SERVER_NAME = "afanasy-py"

_AFANASY_HEADER = re.compile(rb"AFANASY[ \t]+(\d{1,19})[ \t]+JSON")
_HTTP_AFANASY = re.compile(rb"^afanasy[ \t]*:[ \t]*(\S*)[ \t\r]*$", re.IGNORECASE | re.MULTILINE)
_HTTP_LENGTH = re.compile(
    rb"^content-length[ \t]*:[ \t]*(\S*)[ \t\r]*$", re.IGNORECASE | re.MULTILINE
)
_WHITESPACE = b" \t\r\n"


class Framing(enum.Enum):
    AFANASY = "afanasy"
    HTTP = "http"


@dataclass(frozen=True, slots=True)
class NeedMore:
    """Not a whole header yet."""


@dataclass(frozen=True, slots=True)
class Head:
    """A whole header: the body is the ``length`` bytes from offset ``start`` of the data."""

    framing: Framing
    start: int
    length: int


@dataclass(frozen=True, slots=True)
class Get:
    """A whole GET header: the file asked for, as the request target was sent."""

    target: str


@dataclass(frozen=True, slots=True)
class Request:
    framing: Framing
    body: bytes | bytearray


@dataclass(frozen=True, slots=True)
class Bad:
    """Bytes that can never become a request; ``status`` is the HTTP status to answer with,
    ``kind`` a short fixed name of the fault, so that repeated faults are counted by kind."""

    framing: Framing
    text: str
    status: int = 400
    kind: str = "malformed"


NEED_MORE = NeedMore()
Parsed = NeedMore | Head | Get | Bad


def parse(data: bytes | bytearray, max_body: int) -> Parsed:
    """What the first bytes received on one connection amount to."""
    start = len(data) - len(data.lstrip(_WHITESPACE))
    head = data[start:]
    if not head:
        return NEED_MORE if len(data) < AFANASY_HEADER_MAX else _garbage()
    if head.startswith(AFANASY_MAGIC) or AFANASY_MAGIC.startswith(head):
        return _offset(_parse_afanasy(head, max_body), start)
    if head.startswith(HTTP_POST) or HTTP_POST.startswith(head):
        return _offset(_parse_http(head, max_body), start)
    if head.startswith(HTTP_GET):
        return _parse_get(head)
    for method in (HTTP_GET, *HTTP_METHODS):
        if head.startswith(method):
            text = f"only POST and GET are served here, not {method.decode().strip()}"
            return Bad(Framing.HTTP, text, 405, "method")
        if method.startswith(head):
            return NEED_MORE
    return _garbage()


def _offset(parsed: Parsed, start: int) -> Parsed:
    if isinstance(parsed, Head):
        return Head(parsed.framing, parsed.start + start, parsed.length)
    return parsed


def _garbage() -> Bad:
    return Bad(
        Framing.AFANASY,
        "not a request: expected 'AFANASY <length> JSON' or an HTTP POST with an AFANASY header",
        kind="garbage",
    )


def _too_large(how: Framing, length: int, max_body: int) -> Bad:
    text = f"message body of {length} bytes exceeds {max_body} bytes"
    return Bad(how, text, 413, "too large")


def _parse_afanasy(data: bytes | bytearray, max_body: int) -> Parsed:
    match = _AFANASY_HEADER.match(data)
    if match is None:
        # the header is short; past its longest form it can only be malformed
        end = data.find(b"JSON")
        if end < 0 and len(data) < AFANASY_HEADER_MAX:
            return NEED_MORE
        return Bad(Framing.AFANASY, "malformed header: expected 'AFANASY <length> JSON'")
    length = int(match.group(1))
    if length > max_body:
        return _too_large(Framing.AFANASY, length, max_body)
    if length == 0:
        return Head(Framing.AFANASY, match.end(), 0)
    # the body starts at its first non-blank byte; the blanks before it are bounded too
    rest = data[match.end() : AFANASY_HEADER_MAX]
    blanks = len(rest) - len(rest.lstrip(_WHITESPACE))
    if blanks < len(rest):
        return Head(Framing.AFANASY, match.end() + blanks, length)
    if match.end() + blanks < AFANASY_HEADER_MAX:
        return NEED_MORE  # only the header (and maybe whitespace) so far
    return Bad(Framing.AFANASY, "no body after the header, only blanks")


def _parse_http(data: bytes | bytearray, max_body: int) -> Parsed:
    end = data.find(b"\r\n\r\n")
    sep = 4
    if end < 0:
        end, sep = data.find(b"\n\n"), 2
    if end < 0:
        if len(data) > HTTP_HEADER_MAX:
            text = f"HTTP header longer than {HTTP_HEADER_MAX} bytes"
            return Bad(Framing.HTTP, text, 431, "header too long")
        return NEED_MORE
    if end > HTTP_HEADER_MAX:
        text = f"HTTP header longer than {HTTP_HEADER_MAX} bytes"
        return Bad(Framing.HTTP, text, 431, "header too long")
    header = bytes(data[:end])
    found = _HTTP_AFANASY.search(header) or _HTTP_LENGTH.search(header)
    if found is None:
        return Bad(Framing.HTTP, "POST without an 'AFANASY: <length>' header", 411, "no length")
    text = found.group(1)
    if not text.isdigit() or len(text) > 19:
        shown = text[:40].decode(errors="replace")
        return Bad(Framing.HTTP, f"bad body length {shown!r}", kind="bad length")
    length = int(text)
    if length > max_body:
        return _too_large(Framing.HTTP, length, max_body)
    return Head(Framing.HTTP, end + sep, length)


def _parse_get(data: bytes | bytearray) -> Parsed:
    """A GET's request line, once its whole header is here (its body, if any, is ignored)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    if end < 0 and len(data) <= HTTP_HEADER_MAX:
        return NEED_MORE
    if end < 0 or end > HTTP_HEADER_MAX:
        text = f"HTTP header longer than {HTTP_HEADER_MAX} bytes"
        return Bad(Framing.HTTP, text, 431, "header too long")
    line = bytes(data[: data.find(b"\n")]).strip().split()
    if len(line) != 3 or not line[2].startswith(b"HTTP/"):
        return Bad(Framing.HTTP, "malformed request line: expected 'GET <path> HTTP/1.x'")
    return Get(line[1].decode("latin-1"))


_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


def encode(framing: Framing, body: bytes, status: int = 200) -> bytes:
    """A reply in the framing the request came in."""
    if framing is Framing.AFANASY:
        return b"AFANASY %d JSON" % len(body) + body
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        "Cache-Control: max-age=0\r\n"
        f"Server: {SERVER_NAME}\r\n\r\n"
    )
    return head.encode("ascii") + body


def encode_file(status: int, content_type: str, body: bytes) -> bytes:
    """A GET's answer: a file, or a short text saying why not."""
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        "Cache-Control: max-age=0\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Server: {SERVER_NAME}\r\n\r\n"
    )
    return head.encode("ascii") + body
