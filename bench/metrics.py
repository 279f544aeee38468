"""What a Prometheus scrape of /metrics costs at farm size.

A fresh afserver with its web process, JOBS paused jobs of 10 tasks (submitted before the
renders come) and RENDERS simulated renders (bench/_simrenders: afrender's wire protocol,
heartbeats every second); the farm stays still, so the figures are the scrape's. Then:

- miss: a scrape after the one-second cache ran out (the web asks the scheduler for
  `get metrics` and the broker for its counters, then renders the text), median of ROUNDS;
- hit: a scrape within the second (the cached reading rendered again);
- scheduler: the `get metrics` request alone, from a broker client;
- reference: a raw pyzmq DEALER/ROUTER echo of a reply as long as the scheduler's, in this
  process, and the ratio of the scheduler request to it.

Prints one JSON line on stdout (with the load average); logs go to stderr; exits 1 when a
run failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgpack
import zmq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    afserver_env,
    free_port,
    guarded,
    logs_on_failure,
    machine,
    report,
    spawn,
    stop,
    wait_for,
)
from bench._simrenders import raise_fd_limit  # noqa: E402
from bench.web import SimulatedRenders  # noqa: E402
from broker import protocol as P  # noqa: E402
from broker.client import Client  # noqa: E402
from web.metrics import CACHE_SEC  # noqa: E402

ROUNDS = 7


def scrape(url: str) -> tuple[float, int]:
    """Milliseconds of one scrape, and the body's length."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        body = resp.read()
    return (time.perf_counter() - started) * 1000.0, len(body)


def scrape_phase(web: str) -> dict[str, Any]:
    url = f"{web}/metrics"
    misses, hits, size = [], [], 0
    for _ in range(ROUNDS):
        time.sleep(CACHE_SEC)  # the cached reading expires: the next scrape asks the server
        ms, size = scrape(url)
        misses.append(ms)
        hits.append(scrape(url)[0])
    return {
        "miss_ms": round(statistics.median(misses), 2),
        "miss_max_ms": round(max(misses), 2),
        "hit_ms": round(statistics.median(hits), 2),
        "body_bytes": size,
    }


def scheduler_phase(endpoint: str) -> dict[str, Any]:
    client = Client(endpoint, 30.0)
    times, size = [], 0
    for _ in range(ROUNDS):
        started = time.perf_counter()
        reply = client.request({"get": {"type": "metrics"}})
        times.append((time.perf_counter() - started) * 1000.0)
        size = len(msgpack.packb(reply))
    return {"get_metrics_ms": round(statistics.median(times), 2), "reply_bytes": size}


def echo_reference(size: int) -> float:
    """Median milliseconds of a raw pyzmq round trip carrying `size` bytes back."""
    ctx = zmq.Context.instance()
    router, dealer = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealer.connect(f"tcp://127.0.0.1:{port}")
    payload = b"x" * size

    def echo() -> None:
        with contextlib.suppress(zmq.ZMQError):
            for _ in range(ROUNDS + 1):
                ident, _msg = router.recv_multipart()
                router.send_multipart([ident, payload])

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    times = []
    try:
        for _ in range(ROUNDS + 1):
            started = time.perf_counter()
            dealer.send(b"?")
            dealer.recv()
            times.append((time.perf_counter() - started) * 1000.0)
    finally:
        thread.join(5)
        router.close(0)
        dealer.close(0)
    return statistics.median(times[1:])  # the first pays for the connection


def run(jobs: int, renders: int) -> dict[str, Any]:
    errors: list[str] = []
    result: dict[str, Any] = {"bench": "metrics", "jobs": jobs, "renders": renders}
    with tempfile.TemporaryDirectory(prefix="af-bench-metrics-") as tmp_name:
        tmp = Path(tmp_name)
        port, web_port = free_port(), free_port()
        env = afserver_env(tmp, port, af_web_port=web_port)
        web = f"http://127.0.0.1:{web_port}"
        endpoint = P.endpoint("127.0.0.1", port)
        server = None
        raise_fd_limit()  # a socket per simulated render
        sims = SimulatedRenders(endpoint, renders)

        def close() -> None:
            if sims.is_alive():
                sims.stop()
            stop(server, "afserver")

        with logs_on_failure(tmp, close, chars=2000):
            server = spawn(["-m", "workers.supervisor"], env, tmp / "afserver.log")
            wait_for(lambda: _serving(web), 60, "the web's /metrics")
            # The jobs first, on a quiet server: submitted one by one behind 10,000 renders'
            # heartbeats, an earlier run at load 8 fell over (the broker dropped the
            # scheduler for missed heartbeats). The scrape's figures do not depend on the order.
            started = time.monotonic()
            client = Client(endpoint, 30.0)
            for i in range(jobs):
                client.request({"job": {**_job(f"shot{i:05d}"), "offline": True}})
            result["submit_sec"] = round(time.monotonic() - started, 2)
            started = time.monotonic()
            sims.start()
            wait_for(lambda: sims.online >= renders or None, 600, f"{renders} renders online")
            result["register_sec"] = round(time.monotonic() - started, 2)
            result["scheduler"] = guarded("scheduler", errors, lambda: scheduler_phase(endpoint))
            result["scrape"] = guarded("scrape", errors, lambda: scrape_phase(web))
            size = result["scheduler"].get("reply_bytes", 0)
            if size:
                echo_ms = echo_reference(size)
                result["raw_echo_ms"] = round(echo_ms, 3)
                result["get_metrics_to_echo_ratio"] = round(
                    result["scheduler"]["get_metrics_ms"] / echo_ms, 1
                )
            result["load_avg_1m"] = round(os.getloadavg()[0], 2)
            close()
    result["machine"] = machine()
    result["errors"] = errors
    result["ok"] = not errors
    return result


def _job(name: str) -> dict[str, Any]:
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 10, "command": "true"}
    return {"name": name, "blocks": [block]}


def _serving(web: str) -> bool:
    with contextlib.suppress(OSError):
        return scrape(f"{web}/metrics")[1] > 0
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--renders", type=int, default=10_000)
    args = parser.parse_args()
    report(lambda: run(args.jobs, args.renders))


if __name__ == "__main__":
    main()
