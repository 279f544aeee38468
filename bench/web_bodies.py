"""What big request bodies cost the web process: RSS before, at peak and after.

A fresh afserver with its web process; PARALLEL clients at once each POST a body of SIZE
to the farm API, first with a declared Content-Length (refused before a byte is read),
then chunked without a length (counted while it streams, refused at the limit). The limit
is the farm's `af_message_size_max` (the default, 64 MiB, unless --limit-mib). RSS is
sampled every 20 ms while the uploads run; "after" is the settled RSS once they ended.

Prints one JSON line per way of sending, then a summary line; exits 1 when a run failed.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    MB,
    BenchError,
    afserver_env,
    child,
    free_port,
    logs_on_failure,
    machine,
    settled_rss,
    spawn,
    stop,
    wait_for,
)

CHUNK = MB


def upload(port: int, size: int, chunked: bool) -> int | None:
    """POST `size` bytes of JSON-typed junk; the status the server answered, or None when
    it closed without one. Sending stops at the first refusal of the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        head = (
            f"POST /api/farm/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\n{length}\r\n\r\n"
        )
        piece = b"x" * CHUNK
        frame = f"{CHUNK:x}\r\n".encode() + piece + b"\r\n" if chunked else piece
        try:
            sock.sendall(head.encode())
            for _ in range(size // CHUNK):
                sock.sendall(frame)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # refused: the server answered and closed while we were sending
        try:
            answer = sock.recv(4096)
        except OSError:
            return None
        return int(answer.split()[1]) if answer.startswith(b"HTTP/1.1 ") else None


def measure(proc: Any, port: int, parallel: int, size: int, chunked: bool) -> dict[str, Any]:
    before = settled_rss(proc, 10)
    peak = before
    statuses: list[int | None] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(upload(port, size, chunked)))
        for _ in range(parallel)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, proc.memory_info().rss)
        time.sleep(0.02)
    seconds = time.monotonic() - started
    after = settled_rss(proc, 10)
    return {
        "way": "chunked" if chunked else "content-length",
        "parallel": parallel,
        "body_mib": size // MB,
        "statuses": sorted(statuses, key=str),
        "rss_before_mb": round(before / MB, 1),
        "rss_peak_mb": round(peak / MB, 1),
        "rss_after_mb": round(after / MB, 1),
        "seconds": round(seconds, 2),
    }


def run(parallel: int, size_mib: int, limit_mib: int | None) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-web-bodies-"))
    port, web_port = free_port(), free_port()
    settings: dict[str, Any] = {"af_web_port": web_port}
    if limit_mib:
        settings["af_message_size_max"] = limit_mib * MB
    env = afserver_env(tmp, port, **settings)
    server = spawn(["-m", "workers.supervisor"], env, tmp / "afserver.log")
    with logs_on_failure(tmp, lambda: stop(server, "afserver"), 3000):

        def serving() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/farm/users") as resp:
                return resp.status == 200

        wait_for(lambda: _quiet(serving), 30, "the web process serving")
        web = child(server.pid, "web.main")
        urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/openapi.json").read()  # warm
        lines = []
        for chunked in (False, True):
            line = measure(web, web_port, parallel, size_mib * MB, chunked)
            line["limit_mib"] = limit_mib or 64
            if web.status() == "zombie" or not web.is_running():
                raise BenchError("the web process died")
            lines.append(line)
            print(json.dumps(line), flush=True)
        return lines


def _quiet(check: Any) -> bool:
    try:
        return bool(check())
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--limit-mib", type=int, default=None)
    args = parser.parse_args()
    try:
        lines = run(args.parallel, args.size_mib, args.limit_mib)
    except BenchError as exc:
        print(json.dumps({"bench": "web_bodies", "ok": False, "error": str(exc)}))
        sys.exit(1)
    worst = max(line["rss_peak_mb"] - line["rss_before_mb"] for line in lines)
    summary = {"bench": "web_bodies", "ok": True, "worst_peak_growth_mb": worst, **machine()}
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
