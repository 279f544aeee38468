"""The broker's reply times: the server's part of what a render or client waits."""

from __future__ import annotations

from broker import broker as B
from broker import protocol as P


def header(msg_type: int, request_id: int) -> bytes:
    return P.pack_header(msg_type, request_id)


def test_a_reply_is_timed_from_its_request_by_type() -> None:
    times = B.ReplyTimes()
    times.request(b"R:a", header(P.MsgType.RENDER_UPDATE, 7), P.MsgType.RENDER_UPDATE, 10.0)
    times.request(b"R:b", header(P.MsgType.RENDER_UPDATE, 7), P.MsgType.RENDER_UPDATE, 10.5)
    times.request(b"C:c", header(P.MsgType.REQUEST, 1), P.MsgType.REQUEST, 10.0)
    times.reply(b"R:a", header(P.MsgType.RENDER_EVENTS, 7), 10.02)
    times.reply(b"R:b", header(P.MsgType.RENDER_EVENTS, 7), 10.6)
    times.reply(b"R:a", header(P.MsgType.RENDER_EVENTS, 0), 11.0)  # a push: not a reply
    times.reply(b"C:c", header(P.MsgType.REPLY, 1), 10.003)
    figures = times.as_dict()
    assert figures["RENDER_UPDATE"]["n"] == 2
    assert figures["RENDER_UPDATE"]["max"] == 100.0
    assert figures["REQUEST"] == {"n": 1, "p50": 3.0, "p99": 3.0, "max": 3.0}
    assert times.inflight == {}


def test_requests_never_answered_are_forgotten_past_the_limit() -> None:
    times = B.ReplyTimes()
    for i in range(B.INFLIGHT_MAX + 10):
        times.request(b"C:gone", header(P.MsgType.REQUEST, i + 1), P.MsgType.REQUEST, 0.0)
    assert len(times.inflight) == B.INFLIGHT_MAX
    times.request(b"C:x", header(P.MsgType.REQUEST, 0), P.MsgType.REQUEST, 0.0)  # id 0: no reply
    assert len(times.inflight) == B.INFLIGHT_MAX
