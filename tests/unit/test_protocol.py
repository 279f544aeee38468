from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import protocol as P


@given(st.sampled_from(list(P.MsgType)), st.integers(0, P.MAX_REQUEST_ID))
def test_header_round_trip(msg_type: P.MsgType, request_id: int) -> None:
    header = P.unpack_header(P.pack_header(msg_type, request_id))
    assert (header.type, header.request_id, header.version) == (
        msg_type,
        request_id,
        P.PROTOCOL_VERSION,
    )


@given(st.binary(max_size=20))
def test_unpack_header_never_raises_anything_but_protocol_error(frame: bytes) -> None:
    try:
        P.unpack_header(frame)
    except P.ProtocolError as exc:
        assert exc.code in (P.ErrorCode.BAD_MESSAGE, P.ErrorCode.BAD_VERSION)


def test_wrong_version_is_named() -> None:
    with pytest.raises(P.ProtocolError) as err:
        P.unpack_header(struct.pack(">HHI", 9, 1, 1))
    assert err.value.code == P.ErrorCode.BAD_VERSION and "9" in err.value.text


def test_body_size_limit_is_checked_before_decoding() -> None:
    with pytest.raises(P.ProtocolError) as err:
        P.unpack_body(P.pack_body("x" * 100), 50)
    assert err.value.code == P.ErrorCode.TOO_LARGE


@given(st.binary(max_size=200))
def test_unpack_body_never_raises_anything_but_protocol_error(frame: bytes) -> None:
    try:
        P.unpack_body(frame, 1000)
    except P.ProtocolError as exc:
        assert exc.code == P.ErrorCode.BAD_MESSAGE


def test_declared_huge_array_in_small_frame_is_refused() -> None:
    frame = b"\xdd\xff\xff\xff\xff"  # array32 claiming 4 billion items
    with pytest.raises(P.ProtocolError):
        P.unpack_body(frame, 1000)


def test_non_string_map_keys_are_refused() -> None:
    with pytest.raises(P.ProtocolError):
        P.unpack_body(msgpack.packb({1: 2}), 1000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("farm", ("farm", 51000)),
        ("farm:123", ("farm", 123)),
        ("[::1]:5", ("::1", 5)),
        ("::1", ("::1", 51000)),
        ("10.0.0.1", ("10.0.0.1", 51000)),
    ],
)
def test_parse_server(text: str, expected: tuple[str, int]) -> None:
    assert P.parse_server(text, 51000) == expected


@pytest.mark.parametrize("text", ["", "farm:x", "farm:0", "farm:70000"])
def test_parse_server_errors(text: str) -> None:
    with pytest.raises(ValueError):
        P.parse_server(text, 51000)


def test_endpoint_brackets_ipv6() -> None:
    assert P.endpoint("::1", 5) == "tcp://[::1]:5"
    assert P.endpoint("127.0.0.1", 5) == "tcp://127.0.0.1:5"


def test_batch_round_trip_keeps_frames_and_users() -> None:
    entries = [
        [b"R:a", P.pack_header(P.MsgType.REQUEST, 7), b"\x80", None],
        [b"c", b"h", b"", b"u"],
    ]
    assert P.unpack_batch(P.pack_batch(entries), 4) == entries


@pytest.mark.parametrize(
    "frame",
    [
        b"\xc1",  # not msgpack
        msgpack.packb({"a": 1}),  # not a list
        msgpack.packb([[b"a", b"b"]]),  # too few frames
        msgpack.packb([[b"a", "text", b"c", None]]),  # a frame that is not bytes
        msgpack.packb([[b"a", b"b", b"c", 5]]),  # a user that is neither bytes nor nil
        msgpack.packb([5]),  # an entry that is not a list
    ],
)
def test_malformed_batch_is_refused_whole(frame: bytes) -> None:
    with pytest.raises(P.ProtocolError) as err:
        P.unpack_batch(frame, 4)
    assert err.value.code == P.ErrorCode.BAD_MESSAGE


def test_batches_cut_by_count_and_bytes_and_a_huge_entry_goes_alone() -> None:
    small = [b"x"] * (P.BATCH_MAX * 2 + 1)
    assert [len(b) for b in P.batches(small, len)] == [P.BATCH_MAX, P.BATCH_MAX, 1]
    huge = b"y" * (P.BATCH_BYTES + 1)
    assert [len(b) for b in P.batches([b"a", huge, b"b"], len)] == [1, 1, 1]
    assert P.batches([], len) == []
