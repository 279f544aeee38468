"""The original's framings: whole, in pieces, lying, oversized, or not a request at all."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway import framing
from gateway.client import reply_body, request_bytes
from gateway.framing import NEED_MORE, Bad, Framing, Head, NeedMore, Request, encode, parse

MAX = 1000


def whole(raw: bytes, max_body: int = MAX) -> NeedMore | Request | Bad:
    """A request once its header and its body of the announced length have arrived."""
    head = parse(raw, max_body)
    if not isinstance(head, Head):
        return head
    body = raw[head.start : head.start + head.length]
    return Request(head.framing, body) if len(body) == head.length else NEED_MORE


def test_afanasy_request_whole_and_with_whitespace_before_the_body() -> None:
    assert whole(b"AFANASY 2 JSON{}") == Request(Framing.AFANASY, b"{}")
    assert whole(b"AFANASY 2 JSON\n {}") == Request(Framing.AFANASY, b"{}")
    assert whole(b"  AFANASY  2\tJSON{}") == Request(Framing.AFANASY, b"{}")
    assert whole(b"AFANASY 0 JSON") == Request(Framing.AFANASY, b"")


def test_http_post_with_the_afanasy_header() -> None:
    raw = b'POST / HTTP/1.1\r\nHost: x\r\nafanasy: 7\r\n\r\n{"a":1}'
    assert whole(raw) == Request(Framing.HTTP, b'{"a":1}')
    fallback = b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
    assert whole(fallback) == Request(Framing.HTTP, b"{}")


def test_a_whole_header_says_where_the_body_starts_and_its_length() -> None:
    raw = b"AFANASY 10 JSON{"
    assert parse(raw, MAX) == Head(Framing.AFANASY, len(raw) - 1, 10)
    assert parse(b"  " + raw, MAX) == Head(Framing.AFANASY, 2 + len(raw) - 1, 10)
    http = b"POST / HTTP/1.1\r\nAFANASY: 5\r\n\r\n"
    assert parse(http, MAX) == Head(Framing.HTTP, len(http), 5)


def test_blanks_between_header_and_body_are_bounded() -> None:
    assert parse(b"AFANASY 2 JSON   ", MAX) == NEED_MORE
    bad = parse(b"AFANASY 2 JSON" + b" " * 100 + b"{}", MAX)
    assert isinstance(bad, Bad) and "only blanks" in bad.text


def test_a_length_shorter_than_the_body_cuts_it() -> None:
    assert whole(b'AFANASY 3 JSON{"a":1}') == Request(Framing.AFANASY, b'{"a')


def test_oversize_is_refused_from_the_header() -> None:
    bad = parse(b"AFANASY 73400320 JSON", MAX)
    assert isinstance(bad, Bad) and bad.status == 413 and "exceeds" in bad.text
    assert bad.kind == "too large"
    bad = parse(b"POST / HTTP/1.1\r\nAFANASY: 73400320\r\n\r\n", MAX)
    assert isinstance(bad, Bad) and bad.framing is Framing.HTTP and bad.status == 413


def test_what_can_never_become_a_request() -> None:
    for raw in (b"hello", b"\x00\x00\x00\x51", b"AFANASY x JSON" + b" " * 60, b"AFANASYJSON{}"):
        assert isinstance(parse(raw + b" " * 64, MAX), Bad), raw
    assert parse(b"PUT / HTTP/1.1\r\n\r\n", MAX).status == 405  # type: ignore[union-attr]
    assert parse(b"POST / HTTP/1.1\r\n\r\n{}", MAX).status == 411  # type: ignore[union-attr]
    assert parse(b"POST / HTTP/1.1\r\nAFANASY: -1\r\n\r\n", MAX).status == 400  # type: ignore[union-attr]
    endless = b"POST / HTTP/1.1\r\n" + b"X: y\r\n" * 20_000
    assert parse(endless, MAX).status == 431  # type: ignore[union-attr]


def test_prefixes_wait_for_more() -> None:
    for raw in (b"", b"AFA", b"AFANASY 12", b"POS", b"POST / HTTP/1.1\r\n", b"GE"):
        assert isinstance(parse(raw, MAX), NeedMore), raw


@given(st.binary(max_size=300))
def test_any_bytes_are_judged_without_an_exception(data: bytes) -> None:
    assert isinstance(parse(data, MAX), (NeedMore, Head, Bad))


@given(st.dictionaries(st.text(max_size=8), st.integers(), max_size=5), st.integers(1, 7))
def test_a_request_in_pieces_is_the_request_whole(obj: dict[str, int], pieces: int) -> None:
    for how in Framing:
        raw = request_bytes(obj, how)
        request = whole(raw, 10_000)
        assert isinstance(request, Request) and request.framing is how
        step = max(1, len(raw) // pieces)
        for cut in range(0, len(raw) - 1, step):
            assert isinstance(whole(raw[:cut], 10_000), NeedMore)


def test_replies_in_both_framings_read_back() -> None:
    body = b'{"id":1}'
    assert encode(Framing.AFANASY, body) == b'AFANASY 8 JSON{"id":1}'
    assert reply_body(encode(Framing.AFANASY, body), Framing.AFANASY) == (200, body)
    http = encode(Framing.HTTP, body, 413)
    assert http.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close\r\n" in http and b"Content-Type: application/json\r\n" in http
    assert reply_body(http, Framing.HTTP) == (413, body)
    assert framing.SERVER_NAME.encode() in http


def test_a_get_is_its_target_once_its_header_is_whole() -> None:
    from gateway.framing import Get

    assert parse(b"GE", MAX) is NEED_MORE
    assert parse(b"GET /index.html HTTP/1.1\r\nHost: x\r\n", MAX) is NEED_MORE
    assert parse(b"GET /a%2Fb?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", MAX) == Get("/a%2Fb?x=1")
    assert parse(b"GET / HTTP/1.0\n\n", MAX) == Get("/")
    bad = parse(b"GET /\r\n\r\n", MAX)
    assert isinstance(bad, Bad) and "request line" in bad.text
    endless = parse(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 20_000, MAX)
    assert isinstance(endless, Bad) and endless.status == 431
