"""Malformed messages for the broker's port, from a seeded generator: what a buggy client,
a fuzzer or an attacker might send. Used by the fuzz test and bench/garbage.py.

Every message is wrong in some way the server must refuse without harm: frames, headers,
versions, types, worker messages from a peer, bodies that are not msgpack, truncated or
nested 50,000 deep, oversized, or well-formed with wrong types and absurd values. None is
a valid request that would change the farm."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from typing import Any

import msgpack

from broker import protocol as P

_HEADER = struct.Struct(">HHI")
_KNOWN = {int(t) for t in P.MsgType}


def header(msg_type: int, request_id: int = 1, version: int = P.PROTOCOL_VERSION) -> bytes:
    return _HEADER.pack(version, msg_type, request_id)


def junk_value(rng: random.Random, depth: int = 0) -> Any:
    """A msgpack value of any type, absurd ones included (huge ints, NaN, long strings)."""
    pick = rng.randrange(12 if depth < 3 else 8)
    if pick == 0:
        return None
    if pick == 1:
        return rng.random() < 0.5
    if pick == 2:
        return rng.choice([0, -1, 2**63 - 1, -(2**63), 2**64 - 1, rng.randrange(-(10**9), 10**9)])
    if pick == 3:
        return rng.choice([float("nan"), float("inf"), -float("inf"), 1e308, -0.0, 0.5])
    if pick == 4:
        return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(0, 40)))
    if pick == 5:
        return "x" * rng.choice([0, 1, 1000, 20_000])
    if pick == 6:
        return rng.randbytes(rng.randrange(0, 64))
    if pick == 7:
        return "9" * 40  # a 40-digit id as text
    if pick in (8, 9):
        return [junk_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    return {
        rng.choice(["id", "ids", "name", "type", "mask", "job", "get", "action", "blocks", "x"]): (
            junk_value(rng, depth + 1)
        )
        for _ in range(rng.randrange(0, 5))
    }


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _wrong_request(rng: random.Random) -> list[bytes]:
    """A well-formed REQUEST whose content is wrong: an unknown kind, or a known one with a
    field of the wrong type (never a whole valid request)."""
    kind = rng.choice(["get", "action", "job", "user", "nonsense"])
    if kind == "get":
        body: Any = {"get": {"type": rng.choice(["jobs", "renders", 5, None]), "bogus": 1}}
    elif kind == "action":
        body = {"action": {"type": rng.choice(["jobs", "renders"]), "ids": "all", "operation": 5}}
    elif kind == "job":
        body = {"job": {"name": junk_value(rng), "blocks": junk_value(rng), "bogus": True}}
    else:
        body = {kind: junk_value(rng)}
    return [header(P.MsgType.REQUEST, rng.randrange(2**32)), _pack(body)]


def _render_message(rng: random.Random) -> list[bytes]:
    msg_type = rng.choice(
        [P.MsgType.RENDER_REGISTER, P.MsgType.RENDER_UPDATE, P.MsgType.RENDER_DEREGISTER]
    )
    body = {"name": rng.choice([5, None, "", " x"]), "id": junk_value(rng), "tasks": "x"}
    return [header(msg_type), _pack(body)]


def _nested(rng: random.Random) -> list[bytes]:
    depth = rng.randrange(1_000, 50_000)
    return [header(P.MsgType.REQUEST), b"\x91" * depth + b"\xc0"]


def _truncated(rng: random.Random) -> list[bytes]:
    whole = _pack({"get": {"type": "jobs", "ids": list(range(50))}})
    return [header(P.MsgType.REQUEST), whole[: rng.randrange(1, len(whole))]]


_KINDS: list[Callable[[random.Random, int], list[bytes]]] = [
    lambda rng, limit: [rng.randbytes(rng.randrange(0, 32)) for _ in range(rng.randrange(1, 5))],
    lambda rng, limit: [rng.randbytes(rng.choice([0, 1, 7, 9, 100])), b"\x80"],
    lambda rng, limit: [header(P.MsgType.REQUEST, version=rng.choice([0, 2, 99, 65535])), b"\x80"],
    lambda rng, limit: [header(rng.choice([t for t in range(200) if t not in _KNOWN])), b"\x80"],
    lambda rng, limit: [header(P.MsgType.BROKER_NOTICE), _pack({"refused_key": "forged"})],
    lambda rng, limit: [
        header(rng.choice(sorted(P.WORKER_TYPES))),
        _pack({"service": P.SCHEDULER, "secret": junk_value(rng)}),
    ],
    lambda rng, limit: [header(P.MsgType.REQUEST), rng.randbytes(rng.randrange(1, 200))],
    lambda rng, limit: _truncated(rng),
    lambda rng, limit: _nested(rng),
    lambda rng, limit: _wrong_request(rng),
    lambda rng, limit: _render_message(rng),
    lambda rng, limit: [header(P.MsgType.REQUEST), b"\x80" * rng.randrange(limit + 1, limit * 2)],
    lambda rng, limit: [header(P.MsgType.REQUEST), _pack({"get": {}}), b"extra", b"frames"],
    lambda rng, limit: [header(P.MsgType.REQUEST)],
    lambda rng, limit: [header(P.MsgType.MONITOR_REGISTER), _pack(junk_value(rng))],
    lambda rng, limit: [header(P.MsgType.REQUEST), _pack(junk_value(rng))],
]


def malformed(rng: random.Random, size_limit: int) -> list[bytes]:
    """One malformed message (its frames, without the DEALER's identity)."""
    return rng.choice(_KINDS)(rng, size_limit)
