"""The original's framings: whole, in pieces, lying, oversized, or not a request at all."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway import framing
from gateway.client import reply_body, request_bytes
from gateway.framing import Bad, Framing, NeedMore, Request, encode, parse

MAX = 1000


def test_afanasy_request_whole_and_with_whitespace_before_the_body() -> None:
    assert parse(b"AFANASY 2 JSON{}", MAX) == Request(Framing.AFANASY, b"{}")
    assert parse(b"AFANASY 2 JSON\n {}", MAX) == Request(Framing.AFANASY, b"{}")
    assert parse(b"  AFANASY  2\tJSON{}", MAX) == Request(Framing.AFANASY, b"{}")


def test_http_post_with_the_afanasy_header() -> None:
    raw = b'POST / HTTP/1.1\r\nHost: x\r\nafanasy: 7\r\n\r\n{"a":1}'
    assert parse(raw, MAX) == Request(Framing.HTTP, b'{"a":1}')
    fallback = b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
    assert parse(fallback, MAX) == Request(Framing.HTTP, b"{}")


def test_a_body_still_coming_says_how_much_the_request_takes() -> None:
    raw = b"AFANASY 10 JSON{"
    assert parse(raw, MAX) == NeedMore(len(b"AFANASY 10 JSON") + 10)
    assert parse(b"  " + raw, MAX) == NeedMore(2 + len(b"AFANASY 10 JSON") + 10)
    http = b"POST / HTTP/1.1\r\nAFANASY: 5\r\n\r\n{"
    assert parse(http, MAX) == NeedMore(http.index(b"{") + 5)


def test_a_length_shorter_than_the_body_cuts_it() -> None:
    assert parse(b'AFANASY 3 JSON{"a":1}', MAX) == Request(Framing.AFANASY, b'{"a')


def test_oversize_is_refused_from_the_header() -> None:
    bad = parse(b"AFANASY 73400320 JSON", MAX)
    assert isinstance(bad, Bad) and bad.status == 413 and "exceeds" in bad.text
    bad = parse(b"POST / HTTP/1.1\r\nAFANASY: 73400320\r\n\r\n", MAX)
    assert isinstance(bad, Bad) and bad.framing is Framing.HTTP and bad.status == 413


def test_what_can_never_become_a_request() -> None:
    for raw in (b"hello", b"\x00\x00\x00\x51", b"AFANASY x JSON" + b" " * 60, b"AFANASYJSON{}"):
        assert isinstance(parse(raw + b" " * 64, MAX), Bad), raw
    assert parse(b"GET / HTTP/1.1\r\n\r\n", MAX).status == 405  # type: ignore[union-attr]
    assert parse(b"POST / HTTP/1.1\r\n\r\n{}", MAX).status == 411  # type: ignore[union-attr]
    assert parse(b"POST / HTTP/1.1\r\nAFANASY: -1\r\n\r\n", MAX).status == 400  # type: ignore[union-attr]
    endless = b"POST / HTTP/1.1\r\n" + b"X: y\r\n" * 20_000
    assert parse(endless, MAX).status == 431  # type: ignore[union-attr]


def test_prefixes_wait_for_more() -> None:
    for raw in (b"", b"AFA", b"AFANASY 12", b"POS", b"POST / HTTP/1.1\r\n", b"GE"):
        assert isinstance(parse(raw, MAX), NeedMore), raw


@given(st.binary(max_size=300))
def test_any_bytes_are_judged_without_an_exception(data: bytes) -> None:
    assert isinstance(parse(data, MAX), (NeedMore, Request, Bad))


@given(st.dictionaries(st.text(max_size=8), st.integers(), max_size=5), st.integers(1, 7))
def test_a_request_in_pieces_is_the_request_whole(obj: dict[str, int], pieces: int) -> None:
    for how in Framing:
        raw = request_bytes(obj, how)
        whole = parse(raw, 10_000)
        assert isinstance(whole, Request) and whole.framing is how
        step = max(1, len(raw) // pieces)
        for cut in range(0, len(raw) - 1, step):
            assert isinstance(parse(raw[:cut], 10_000), NeedMore)


def test_replies_in_both_framings_read_back() -> None:
    body = b'{"id":1}'
    assert encode(Framing.AFANASY, body) == b'AFANASY 8 JSON{"id":1}'
    assert reply_body(encode(Framing.AFANASY, body), Framing.AFANASY) == (200, body)
    http = encode(Framing.HTTP, body, 413)
    assert http.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close\r\n" in http and b"Content-Type: application/json\r\n" in http
    assert reply_body(http, Framing.HTTP) == (413, body)
    assert framing.SERVER_NAME.encode() in http
