"""A seeded fuzz of the web process of a running afserver: 1,200 malformed requests
(oversized, truncated, wrong types, deep nesting, huge ids, bad UTF-8, bad paths, tokens in
URLs, wrong content types) from four threads while a good client keeps reading jobs.

Every request gets an answer below 500 (a few are valid: filters are free text), every process of the server is the one
that started, the good client is served throughout, the web's log stays short (a peer's
repeated refusals are told once, then counted) and its RSS comes back within 20 %.
Big bodies in parallel cost the web about their limit each, not their size."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
import pytest

from tests.conftest import Farm, wait_for
from tests.conftest import web_call as call
from web.refusals import SUMMARY_SEC

pytestmark = pytest.mark.integration

SEED = 20
REQUESTS = 1200
LIMIT = 1024 * 1024  # af_message_size_max of this farm: oversized bodies stay cheap
JSON = "application/json"

GET_PATHS = [
    "/api/farm/jobs/{id}",
    "/api/farm/jobs/{id}/why",
    "/api/farm/jobs/{id}/tasks?limit={id}&block={id}",
    "/api/farm/jobs/{id}/blocks/{id}/tasks/{id}/output?attempt={id}",
    "/api/farm/jobs/{id}/blocks/{id}/tasks/{id}/log",
    "/api/farm/renders?mode={text}",
    "/api/farm/jobs?user={text}",
    "/api/stats/jobs?from={time}&to={time}&group={text}&depth={id}",
    "/api/stats/tasks?depth={id}",
    "/api/stats/graph?from={time}",
    "/api/stats/logs?info={text}&to={time}",
    "/stats/?from={time}&depth={id}",
    "/stats/logs?subject={text}&from={time}",
    "/monitor/jobs/{id}",
    "/static/{text}",
    "/api/farm/jobs?token=aft_{text}",
    "/{text}",
]
POST_PATHS = ["/api/farm/jobs", "/api/farm/jobs/action", "/api/farm/{text}/action",
              "/api/stats/delete", "/stats/admin", "/api/farm/renders/action"]  # fmt: skip
IDS = ["1" * 40, "9" * 19, "-1", "²", "٣", "0x10", "1e3", "", "%ff", "%00", "1.5", "1,2,1" * 9]
TEXTS = ["%ff%fe", "..%2f..%2fetc%2fpasswd", "a" * 5000, "%e2%82", "<script>", "'\"", "%0d%0a"]
TIMES = ["99999999999999", "-5", "0001-01-01", "9999-12-31T23:59", "²", "1" * 40, "2020-02-30"]


def nested(rng: random.Random) -> bytes:
    depth = rng.choice([65, 999, 5000, 20000])
    opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    return b'{"job":' + opener * depth + b"1" + closer * depth + b"}"


def wrong_json(rng: random.Random) -> bytes:
    return rng.choice(
        [
            b"[]",
            b'"job"',
            b"null",
            b"1" + b"0" * 40,
            b'{"job": []}',
            b'{"job": {"name": 1, "blocks": {}}}',
            b'{"job": {"name": "x", "blocks": [{"frame_first": ' + b"9" * 40 + b"}]}}",
            b'{"ids": [' + b"1" * 40 + b'], "operation": {"type": "pause"}}',
            b'{"ids": "all", "operation": {"type": "pause"}}',
            b'{"names": [null], "params": {"NIMBY": "yes"}}',
            b'{"before": 1e999, "confirm": true}',
            b'{"before": NaN, "confirm": true}',
            b'{"before": true, "confirm": true}',
            b'{"folder": ["/"], "confirm": true}',
            b'{"job": "\\ud800"}',
            b'{"job": "\xff\xfe\xfd"}',
            b"\xef\xbb\xbf{}",
            b'{"job": {',
            b"{" * 3 + b"}",
        ]
    )


def request(rng: random.Random, port: int) -> tuple[bytes, bytes, bool]:
    """One malformed request: (head, body, answer expected)."""
    kind = rng.choice(["get", "get", "post", "post", "nested", "big", "chunked", "truncated"])
    host = f"Host: 127.0.0.1:{port}\r\n"

    def fill(path: str) -> str:
        return (
            path.replace("{id}", rng.choice(IDS), 1)
            .replace("{id}", rng.choice(IDS))
            .replace("{text}", rng.choice(TEXTS))
            .replace("{time}", rng.choice(TIMES))
        )

    if kind == "get":
        path = fill(rng.choice(GET_PATHS))
        return f"GET {path} HTTP/1.1\r\n{host}\r\n".encode(), b"", True
    path = fill(rng.choice(POST_PATHS))
    ctype = rng.choice([JSON, JSON, JSON, "text/plain", "application/x-www-form-urlencoded", ""])
    origin = rng.choice(["", "", "Origin: http://127.0.0.1:1\r\n", "Origin: null\r\n"])
    headers = f"{host}{origin}Content-Type: {ctype}\r\n" if ctype else f"{host}{origin}"
    if kind == "big":
        head = f"POST {path} HTTP/1.1\r\n{headers}Content-Length: {LIMIT * 3}\r\n\r\n"
        return head.encode(), b"x" * 65536, True
    if kind == "chunked":
        head = f"POST {path} HTTP/1.1\r\n{headers}Transfer-Encoding: chunked\r\n\r\n"
        chunk = b"%x\r\n%s\r\n" % (256 * 1024, b"[" * (256 * 1024))
        return head.encode(), chunk * 5 + b"0\r\n\r\n", True
    body = nested(rng) if kind == "nested" else wrong_json(rng)
    if kind == "truncated":
        head = f"POST {path} HTTP/1.1\r\n{headers}Content-Length: {len(body) + 1000}\r\n\r\n"
        return head.encode(), body, False
    head = f"POST {path} HTTP/1.1\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
    return head.encode(), body, True


def send(port: int, head: bytes, body: bytes, answer: bool) -> int | None:
    """The status answered (0: closed without an answer), or None when none was expected."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        with contextlib.suppress(OSError):  # refused early (413), closed while we were sending
            sock.sendall(head + body)
        if not answer:
            return None
        data = b""
        with contextlib.suppress(OSError):
            while b"\r\n" not in data:
                piece = sock.recv(4096)
                if not piece:
                    break
                data += piece
        return int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else 0


def web_lines(farm: Farm) -> list[str]:
    return [line for line in farm.log("afserver").splitlines() if " web[" in line]


def test_malformed_requests_never_break_the_web(make_web_farm) -> None:  # type: ignore[no-untyped-def]
    farm = make_web_farm(af_message_size_max=LIMIT)
    port = int(farm.web.rsplit(":", 1)[1])
    wait_for(lambda: call(farm, "GET", "/api/farm/jobs")[0] == 200, 15, "the web API serving")
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 3, "command": "true"}
    status, reply = call(
        farm, "POST", "/api/farm/jobs", {"job": {"name": "kept", "blocks": [block]}}
    )
    assert status == 200, reply  # no render: it waits, and the good client reads it
    server = psutil.Process(farm.server.pid)
    pids = {p.pid: p.cmdline()[-1] for p in server.children()}
    web = farm.child("web.main")
    warm = random.Random(SEED + 1)
    for _ in range(100):  # warm: every route's first use allocates what it keeps
        send(port, *request(warm, port))
    start_rss = web.memory_info().rss
    log_start = len(web_lines(farm))

    served: list[float] = []
    failed: list[Any] = []
    stop = threading.Event()

    def good_client() -> None:
        while not stop.is_set():
            t0 = time.monotonic()
            status, body = call(farm, "GET", "/api/farm/jobs")
            if status != 200 or not any(j["name"] == "kept" for j in body["jobs"]):
                failed.append((status, body))
            served.append(time.monotonic() - t0)
            time.sleep(0.05)

    reader = threading.Thread(target=good_client, daemon=True)
    reader.start()
    rng = random.Random(SEED)
    cases = [request(rng, port) for _ in range(REQUESTS)]
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda case: send(port, *case), cases))
    seconds = time.monotonic() - started
    stop.set()
    reader.join(15)

    counts = Counter(statuses)
    answered = [s for s in statuses if s is not None]
    assert len(cases) >= 1000 and seconds < 120, (len(cases), seconds)
    assert all(0 < s < 500 for s in answered), counts  # no 5xx, no 0 (closed unanswered)
    assert counts[400] > 200 and counts[403] > 200 and counts[413] > 20, counts
    assert not failed, failed[:3]
    assert len(served) >= 10 and max(served) < 5.0, (len(served), max(served, default=None))
    assert {p.pid: p.cmdline()[-1] for p in server.children()} == pids  # none died, none restarted
    assert web.is_running()

    def settled() -> bool:
        return web.memory_info().rss <= start_rss * 1.2

    wait_for(settled, 20, f"web RSS back within 20 % of {start_rss / 2**20:.1f} MiB")
    wait_for(
        lambda: any("more refusals" in line for line in web_lines(farm)[log_start:]),
        3 * SUMMARY_SEC,
        "the summary of the counted refusals",
    )
    lines = web_lines(farm)[log_start:]
    print(  # the figures, for whoever runs this with -s
        f"{len(cases)} requests in {seconds:.1f} s: {dict(counts)}; good client "
        f"{len(served)} reads, slowest {max(served):.3f} s; web RSS {start_rss / 2**20:.1f} "
        f"-> {web.memory_info().rss / 2**20:.1f} MiB; {len(lines)} web log lines"
    )
    assert "Traceback" not in farm.log("afserver")
    assert len(lines) < 120, lines[-20:]  # told once per peer and kind, then counted


def stream_upload(port: int, size: int, chunked: bool) -> int:
    """POST `size` bytes in 1 MiB pieces, stopping when the server refuses; its status."""
    piece = b"x" * (1024 * 1024)
    frame = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = (
        f"POST /api/farm/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\n{length}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(head)
            for _ in range(size // len(piece)):
                sock.sendall(frame)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        with contextlib.suppress(OSError):
            answer = sock.recv(4096)
            return int(answer.split()[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return 0


def test_parallel_big_bodies_cost_about_their_limit(make_web_farm) -> None:  # type: ignore[no-untyped-def]
    """Four 64 MiB uploads at once against a limit of 8 MiB: declared ones are refused before
    a byte is read, chunked ones once 8 MiB arrived. The web grows by about 4 x 8 MiB at
    most (it grew by the whole bodies before), and gives the memory back."""
    limit, size, parallel = 8 * 2**20, 64 * 2**20, 4
    farm = make_web_farm(af_message_size_max=limit)
    port = int(farm.web.rsplit(":", 1)[1])
    wait_for(lambda: call(farm, "GET", "/api/farm/jobs")[0] == 200, 15, "the web API serving")
    web = farm.child("web.main")
    for chunked in (False, True):
        before = web.memory_info().rss
        peak = before
        with ThreadPoolExecutor(parallel) as pool:
            uploads = [pool.submit(stream_upload, port, size, chunked) for _ in range(parallel)]
            while not all(u.done() for u in uploads):
                peak = max(peak, web.memory_info().rss)
                time.sleep(0.01)
        assert [u.result() for u in uploads] == [413] * parallel, chunked
        assert peak - before < parallel * limit * 1.5, (chunked, before, peak)
        wait_for(
            lambda b=before: web.memory_info().rss < b * 1.2, 10, f"RSS back (chunked {chunked})"
        )
