"""Reply times: how long requests spend in the server, as the broker sees them."""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from broker import protocol as P

# upper bounds of the buckets, ms (the last one also holds whatever took longer)
REPLY_BUCKETS_MS = (
    1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500, 750,
    1000, 2000, 5000, 10000, 30000,
)  # fmt: skip
_LAST_BUCKET = len(REPLY_BUCKETS_MS) - 1
INFLIGHT_MAX = 100_000  # requests awaiting a reply that ReplyTimes follows
_NO_REQUEST_ID = bytes(4)  # pushes and fire-and-forget messages carry request id 0


class ReplyTimes:
    """How long requests spend in the server, from the broker reading one to the broker
    sending its reply: the server's part of what a render or client waits, per request type.

    Counted since the start in buckets (REPLY_BUCKETS_MS, upper bounds), so a reader can
    take two readings and see any period of its own; a percentile is the bucket it falls in.
    A request never answered (its client went away) is forgotten once INFLIGHT_MAX newer
    ones wait."""

    def __init__(self) -> None:
        self.inflight: dict[tuple[bytes, bytes], tuple[int, float]] = {}
        self.counts: dict[int, list[int]] = {}

    def request(self, client: bytes, header: bytes, msg_type: int, now: float) -> None:
        request_id = header[4:]
        if request_id == _NO_REQUEST_ID:
            return
        inflight = self.inflight
        inflight[(client, request_id)] = (msg_type, now)
        if len(inflight) > INFLIGHT_MAX:
            del inflight[next(iter(inflight))]

    def reply(self, client: bytes, header: bytes, now: float) -> None:
        found = self.inflight.pop((client, header[4:]), None)
        if found is None:
            return
        counts = self.counts.get(found[0])
        if counts is None:
            counts = self.counts[found[0]] = [0] * len(REPLY_BUCKETS_MS)
        bucket = bisect_left(REPLY_BUCKETS_MS, (now - found[1]) * 1000.0)
        counts[min(bucket, _LAST_BUCKET)] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            P.type_name(msg_type): {
                "n": sum(counts),
                "p50": bucket_percentile(counts, 0.50),
                "p99": bucket_percentile(counts, 0.99),
                "counts": list(counts),
            }
            for msg_type, counts in sorted(self.counts.items())
        }


def bucket_percentile(counts: list[int], q: float) -> float | None:
    """The upper bound (ms) of the bucket holding quantile q; None when nothing was counted."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0
    for bound, count in zip(REPLY_BUCKETS_MS, counts, strict=True):
        seen += count
        if seen >= rank:
            return bound
    return REPLY_BUCKETS_MS[-1]
