"""render.output: the kept log with its middle cut, and the stream of new bytes."""

from __future__ import annotations

import pytest

from render.output import OutputBuffer


def lines(n: int) -> bytes:
    return b"".join(b"line %04d\n" % i for i in range(n))  # 10 bytes each


def test_small_output_is_kept_whole() -> None:
    buf = OutputBuffer(limit=100)
    buf.append(b"hello\n")
    buf.append(b"")
    buf.append("wörld\n".encode())
    assert buf.text() == "hello\nwörld\n"
    assert buf.total == 13 and buf.cut == 0


def test_exactly_the_limit_is_not_cut() -> None:
    buf = OutputBuffer(limit=100)
    buf.append(lines(10))
    assert buf.text() == lines(10).decode() and buf.cut == 0


@pytest.mark.parametrize("piece", [1, 3, 10, 77, 1000, 10_000])
def test_middle_cut_keeps_head_and_tail(piece: int) -> None:
    data = lines(1000)  # 10000 bytes
    buf = OutputBuffer(limit=100)
    for i in range(0, len(data), piece):
        buf.append(data[i : i + piece])
    assert buf.total == 10_000 and buf.cut == 9900
    text = buf.text()
    assert text == data[:50].decode() + "[... 9900 bytes cut ...]\n" + data[-50:].decode()


def test_marker_starts_on_its_own_line() -> None:
    buf = OutputBuffer(limit=10)
    buf.append(b"abcdefghijklmnopqrstuvwxyz")
    assert buf.text() == "abcde\n[... 16 bytes cut ...]\nvwxyz"


def test_invalid_utf8_is_replaced() -> None:
    buf = OutputBuffer()
    buf.append(b"ok \xff\xfe end")
    assert buf.text() == "ok \ufffd\ufffd end"


def test_bad_limit() -> None:
    with pytest.raises(ValueError):
        OutputBuffer(limit=1)


def test_take_new_streams_what_arrived_since_the_last_take() -> None:
    buf = OutputBuffer(limit=1000)
    assert buf.take_new() == (b"", 0)
    buf.append(b"abc")
    buf.append(b"def")
    assert buf.take_new() == (b"abcdef", 0)
    assert buf.take_new() == (b"", 0)
    buf.append(b"0123456789")
    assert buf.take_new(max_bytes=4) == (b"0123", 6)  # the oldest go, the rest is skipped
    assert buf.take_new() == (b"", 0)
    buf.append(b"next")
    assert buf.take_new() == (b"next", 0)
    assert buf.total == 20
    assert buf.text() == "abcdef0123456789next"  # the kept log does not depend on takes


def test_take_new_pending_is_bounded_by_the_limit() -> None:
    buf = OutputBuffer(limit=100)
    buf.append(lines(5))
    buf.append(lines(20))  # 250 bytes pending, only 100 kept for streaming
    chunk, skipped = buf.take_new(max_bytes=1000)
    assert chunk == (lines(5) + lines(20))[:100] and skipped == 150
    assert buf.take_new() == (b"", 0)
