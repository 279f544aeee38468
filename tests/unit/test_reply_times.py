"""The broker's reply times: the server's part of what a render or client waits."""

from __future__ import annotations

from broker import protocol as P
from broker import replytimes as B


def header(msg_type: int, request_id: int) -> bytes:
    return P.pack_header(msg_type, request_id)


def test_a_reply_is_timed_from_its_request_by_type() -> None:
    times = B.ReplyTimes()
    for n, took in enumerate((0.0005, 0.004, 0.004, 0.1, 45.0), start=1):
        times.request(b"R:a", header(P.MsgType.RENDER_UPDATE, n), P.MsgType.RENDER_UPDATE, 10.0)
        times.reply(b"R:a", header(P.MsgType.RENDER_EVENTS, n), 10.0 + took)
    times.request(b"C:c", header(P.MsgType.REQUEST, 1), P.MsgType.REQUEST, 10.0)
    times.reply(b"R:a", header(P.MsgType.RENDER_EVENTS, 0), 11.0)  # a push: not a reply
    times.reply(b"C:c", header(P.MsgType.REPLY, 1), 10.0025)
    figures = times.as_dict()
    updates = figures["RENDER_UPDATE"]
    assert updates["n"] == 5
    assert updates["p50"] == 5  # the bucket of 4 ms: up to 5 ms
    assert updates["p99"] == B.REPLY_BUCKETS_MS[-1]  # 45 s: in the last bucket
    assert figures["REQUEST"]["n"] == 1 and figures["REQUEST"]["p50"] == 3
    assert times.inflight == {}


def test_a_period_is_the_difference_of_two_readings() -> None:
    before = [0] * len(B.REPLY_BUCKETS_MS)
    after = list(before)
    after[0], after[5] = 98, 2  # 98 replies within 1 ms, 2 within 10 ms
    period = [a - b for a, b in zip(after, before, strict=True)]
    assert B.bucket_percentile(period, 0.5) == 1
    assert B.bucket_percentile(period, 0.99) == 10
    assert B.bucket_percentile(before, 0.5) is None


def test_requests_never_answered_are_forgotten_past_the_limit() -> None:
    times = B.ReplyTimes()
    for i in range(B.INFLIGHT_MAX + 10):
        times.request(b"C:gone", header(P.MsgType.REQUEST, i + 1), P.MsgType.REQUEST, 0.0)
    assert len(times.inflight) == B.INFLIGHT_MAX
    times.request(b"C:x", header(P.MsgType.REQUEST, 0), P.MsgType.REQUEST, 0.0)  # id 0: no reply
    assert len(times.inflight) == B.INFLIGHT_MAX
