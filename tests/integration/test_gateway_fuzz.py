"""The gateway under a storm of malformed requests from a seeded generator: oversized and
lying lengths, truncated requests, wrong types, deep nesting, huge ids, bad UTF-8 and
garbage headers, in both framings. Every one gets an error reply in its framing (or, for a
client that neither finishes nor closes, a drop), while a good client keeps submitting
jobs; no process dies or restarts, no traceback is logged, the gateway's log lines stay
bounded by time, not by requests, and its memory comes back."""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psutil
import pytest

from gateway.client import reply_body, send
from gateway.framing import Framing
from tests.conftest import Farm, free_port, wait_for

pytestmark = pytest.mark.integration

SEED = 20
CASES = 1200
DROPS = 16  # clients that announce more than they send and never close: dropped after 1 s
LIMIT = 1 << 20  # af_message_size_max
WORKERS = 8
SUMMARY_SEC = 5.0  # gateway.main.SUMMARY_SEC

VALUES: list[Any] = [
    None, True, False, 0, -1, 7, 10**40, -(10**40), 2**63, -(2**63) - 1, 1.5, -0.0, 1e308,
    "", "x", "☃", "(", "*", "[a-", "\\", " " * 300, [], {}, [1, "a", None], {"a": 1},
    [10**30], ["x"] * 50, list(range(2000)), "jobs", "renders", "users", "pools", "branches",
]  # fmt: skip
TYPES = ["jobs", "renders", "users", "pools", "branches", "monitors", "tasks"]


@dataclass(frozen=True, slots=True)
class Case:
    kind: str
    raw: bytes
    half_close: bool = True  # the client shuts its sending side after the request
    answered: bool = True  # False: the right answer is a drop (nothing whole, no close)


def afanasy(body: bytes, length: int | None = None) -> bytes:
    return b"AFANASY %d JSON" % (len(body) if length is None else length) + body


def http(body: bytes, length: int | str | None = None, head: bytes = b"") -> bytes:
    told = str(len(body) if length is None else length).encode()
    return b"POST / HTTP/1.1\r\nHost: farm\r\n" + head + b"AFANASY: " + told + b"\r\n\r\n" + body


def framed(rng: random.Random, body: bytes, length: int | None = None) -> bytes:
    return afanasy(body, length) if rng.random() < 0.5 else http(body, length)


def value(rng: random.Random) -> Any:
    return rng.choice(VALUES) if rng.random() < 0.8 else rng.choice(TYPES)


def wrong_typed(rng: random.Random) -> Any:
    v = lambda: value(rng)  # noqa: E731
    block = {"name": v(), "tasks": v(), "frame_first": v(), "frames_per_task": v(), "flags": v()}
    templates = [
        lambda: v(),
        lambda: {"job": v()},
        lambda: {"job": {"name": v(), "user_name": v(), "blocks": v(), "priority": v()}},
        lambda: {"job": {"name": "fz", "user_name": "fuzz", "blocks": [block, v()]}},
        lambda: {"get": v()},
        lambda: {"get": {"type": v(), "ids": v(), "mode": v(), "mask": v(), "user_name": v()}},
        lambda: {
            "get": {"type": "jobs", "ids": [1], "block_ids": v(), "task_ids": v(), "mode": v()}
        },
        lambda: {"get": {"type": "jobs", "serials": v(), "uids": v(), "users": v()}},
        lambda: {"action": v()},
        lambda: {
            "action": {
                "type": v(),
                "ids": v(),
                "mask": v(),
                "user_name": v(),
                "operation": v(),
                "params": v(),
            }
        },
        lambda: {
            "action": {
                "type": "jobs",
                "ids": [1],
                "user_name": "fuzz",
                "block_ids": v(),
                "block_mask": v(),
                "operation": {"type": v(), "task_ids": v()},
            }
        },
        lambda: {"monitor": v(), "user_name": v()},
        lambda: {rng.choice(["job", "get", "action", "user", "save", "x"]): v(), "k": v()},
    ]
    return rng.choice(templates)()


def nested(rng: random.Random) -> bytes:
    depth = rng.choice([200, 600, 990, 1500, 5000, 100_000])
    open_, close = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    inner = open_ * depth + b"1" + close * depth
    return rng.choice([inner, b'{"get": {"type": "jobs", "mode": %s}}' % inner])


def huge_ids(rng: random.Random) -> bytes:
    big = str(rng.choice([1, -1]) * 10 ** rng.randint(19, 400)).encode()
    return rng.choice(
        [
            b'{"get": {"type": "jobs", "ids": [%s]}}' % big,
            b'{"get": {"type": "jobs", "ids": [1], "block_ids": [%s], "task_ids": [0]}}' % big,
            b'{"action": {"type": "jobs", "ids": [%s], "user_name": "fuzz", '
            b'"operation": {"type": "pause"}}}' % big,
            b'{"action": {"type": "jobs", "ids": [1], "user_name": "fuzz", '
            b'"params": {"priority": %s}}}' % big,
            b'{"get": {"type": "jobs", "ids": [1e400]}}',
        ]
    )


def bad_utf8(rng: random.Random) -> bytes:
    junk = bytes(rng.choice([0xFF, 0xFE, 0xC0, 0x80, 0xED, 0xA0]) for _ in range(rng.randint(1, 8)))
    return rng.choice(
        [
            b'{"get": {"type": "jobs", "mask": "%s"}}' % junk,
            b'{"job": {"name": "%s", "user_name": "fuzz", "blocks": []}}' % junk,
            b'{"get": {"type": "users", "user_name": "\\ud800"}}',
            b'{"job": {"name": "\\udfff", "user_name": "fuzz", "blocks": [{"tasks": [{}]}]}}',
            b"\xef\xbb\xbf{}",
        ]
    )


def garbage_header(rng: random.Random) -> bytes:
    return rng.choice(
        [
            rng.randbytes(rng.randint(1, 300)),
            b"AFANASY -5 JSON{}",
            b"AFANASY 1e3 JSON{}",
            b"AFANASY 99999999999999999999 JSON{}",
            b"AFANASYJSON{}",
            b"AFANASY 2 JSON" + b" " * 100 + b"{}",
            b"AFANASY \x00 JSON{}",
            b"\x00\x00\x00\x51" + rng.randbytes(60),
            http(b"{}", "abc"),
            http(b"{}", "-1"),
            http(b"{}", "1" * 40),
            http(b"{}", head=b"AFANASY: 7\r\n"),
            http(b"{}", head=b"X-" + b"a" * 70_000 + b": b\r\n"),
            http(b"{}", head=b"\x00\xff: \x01\r\n"),
            b"POST / HTTP/1.1\r\n\r\n{}",
            rng.choice([b"PUT", b"DELETE", b"OPTIONS", b"HEAD"])
            + b" / HTTP/1.1\r\n\r\n",  # GET is served (files)
            b"POST " + rng.randbytes(100),
        ]
    )


def generate(rng: random.Random) -> Case:
    kind = rng.choice(
        ["oversized", "lying", "truncated", "typed", "nested", "ids", "utf8", "garbage"]
    )
    good = json.dumps({"get": {"type": "users"}}).encode()
    if kind == "oversized":
        return Case(kind, framed(rng, b"", rng.randint(LIMIT + 1, 10**19 - 1)))
    if kind == "lying":
        body = json.dumps(wrong_typed(rng)).encode()
        return Case(kind, framed(rng, body, rng.choice([max(1, len(body) // 2), len(body) + 99])))
    if kind == "truncated":
        raw = framed(rng, good)
        return Case(kind, raw[: rng.randint(1, len(raw) - 1)])
    if kind == "typed":
        return Case(kind, framed(rng, json.dumps(wrong_typed(rng)).encode()))
    if kind == "nested":
        return Case(kind, framed(rng, nested(rng)))
    if kind == "ids":
        return Case(kind, framed(rng, huge_ids(rng)))
    if kind == "utf8":
        return Case(kind, framed(rng, bad_utf8(rng)))
    return Case(kind, garbage_header(rng))


def exchange_raw(port: int, case: Case, timeout: float = 15.0) -> bytes | None:
    """The reply's bytes; None when the gateway dropped the client without one."""
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the gateway may answer (and stop reading) early
            sock.sendall(case.raw)
            if case.half_close:
                sock.shutdown(socket.SHUT_WR)
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    return data or None


def check_reply(case: Case, data: bytes | None) -> str | None:
    """What is wrong with the gateway's answer to one case, or None."""
    if not case.answered:
        return None if data is None else f"answered a client that should be dropped: {data[:80]!r}"
    if data is None:
        # nothing to answer: only blanks were sent
        return None if not case.raw.strip() else "no reply"
    how = Framing.HTTP if data.startswith(b"HTTP/1.1 ") else Framing.AFANASY
    if how is Framing.AFANASY and not data.startswith(b"AFANASY "):
        return f"a reply in no framing: {data[:80]!r}"
    whole = reply_body(data, how)
    if whole is None:
        return f"a reply cut short: {data[:80]!r}"
    try:
        reply = json.loads(whole[1])
    except ValueError:
        return f"a reply that is not JSON: {whole[1][:80]!r}"
    if not isinstance(reply, dict):
        return f"a reply that is not an object: {reply!r:.80}"
    if how is Framing.HTTP and whole[0] >= 500 and "busy" not in str(reply):
        return f"HTTP {whole[0]}: {reply!r:.120}"
    return None


def good_job(n: int) -> dict[str, Any]:
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 2, "command": "echo @#@"}
    return {"job": {"name": f"good{n}", "user_name": "good", "blocks": [block]}}


def gateway_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if re.search(r" gateway\[\d+\] gateway: ", line)]


def test_a_storm_of_malformed_requests_leaves_the_gateway_serving(make_farm: Any) -> None:
    port = free_port()
    farm: Farm = make_farm(
        af_gateway_port=port, af_so_server_RCVTIMEO_sec=1, af_message_size_max=LIMIT
    )
    farm.start_server()
    wait_for(lambda: "users" in send(port, {"get": {"type": "users"}}), 15, "the gateway")
    assert send(port, good_job(0))["id"] > 0  # warm: a first submission before measuring
    gateway = farm.child("gateway.main")
    children = {p.pid for p in psutil.Process(farm.server.pid).children()}  # type: ignore[union-attr]
    rss_start = gateway.memory_info().rss
    lines_before = len(gateway_lines(farm.log("afserver")))

    rng = random.Random(SEED)
    cases = [generate(rng) for _ in range(CASES)]
    drops = [
        Case(
            "silent", afanasy(b'{"get": {"type": "users"}}', 500), half_close=False, answered=False
        )
        for _ in range(DROPS)
    ]

    stop = threading.Event()
    served: list[int] = []
    failures: list[str] = []

    def good_client() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            how = Framing.AFANASY if n % 2 else Framing.HTTP
            try:
                reply = send(port, good_job(n), how, timeout=10)
                if reply.get("id", 0) > 0:
                    served.append(reply["id"])
                else:
                    failures.append(f"submission refused: {reply}")
                jobs = send(port, {"get": {"type": "jobs", "users": ["good"]}}, how)["jobs"]
                if reply["id"] not in {j["id"] for j in jobs}:
                    failures.append(f"job {reply['id']} not listed")
            except Exception as exc:
                failures.append(f"good client: {exc!r}")

    good = threading.Thread(target=good_client)
    started = time.monotonic()
    good.start()
    try:
        with ThreadPoolExecutor(WORKERS + DROPS) as pool:
            dropped = [pool.submit(exchange_raw, port, case) for case in drops]
            replies = list(pool.map(lambda case: exchange_raw(port, case), cases))
            dropped_replies = [f.result() for f in dropped]
    finally:
        stop.set()
        good.join(30)

    wrong = [
        f"{case.kind} {case.raw[:60]!r}: {problem}"
        for case, data in zip([*cases, *drops], [*replies, *dropped_replies], strict=True)
        if (problem := check_reply(case, data))
    ]
    assert not wrong, f"{len(wrong)} wrong answers (seed {SEED}), first: {wrong[:5]}"
    assert len({c.kind for c in cases}) == 8 and len(cases) >= 1000
    assert not failures, failures[:5]
    assert len(served) >= 5, "the good client was served meanwhile"
    assert "users" in send(port, {"get": {"type": "users"}})  # and after

    # every process alive, none restarted; no traceback; log lines bounded by time
    now = {p.pid for p in psutil.Process(farm.server.pid).children()}  # type: ignore[union-attr]
    assert now == children and all(psutil.pid_exists(pid) for pid in now)
    log = farm.log("afserver")
    assert "Traceback" not in log and "restarting" not in log
    # each kind of fault: logged once, then counted in a summary line when its period ends
    summaries = wait_for(
        lambda: [
            line for line in gateway_lines(farm.log("afserver")) if "more in the last" in line
        ],
        2 * SUMMARY_SEC,
        "the summary lines of the repeated faults",
    )
    lines = gateway_lines(farm.log("afserver"))[lines_before:]
    elapsed = time.monotonic() - started
    kinds = {
        re.split(r" from |: \d+ more in the last", line.split(" gateway: ", 1)[1])[0]
        for line in lines
    }
    assert len(kinds) >= 8, kinds
    assert len(lines) <= 2 * len(kinds) * (elapsed / SUMMARY_SEC + 1), lines
    assert len(lines) < len(cases) / 10
    counted = sum(int(re.search(r": (\d+) more in the last", line)[1]) for line in summaries)  # type: ignore[index]
    assert counted > 10 * len(lines)  # refusals of the framing: counted, not each logged

    # the gateway's memory comes back to within 20 % of where it started
    wait_for(
        lambda: gateway.memory_info().rss <= 1.2 * rss_start,
        15,
        f"gateway RSS back within 20 % of {rss_start >> 20} MiB "
        f"(now {gateway.memory_info().rss >> 20} MiB)",
    )
