"""What N malformed messages at the broker's port cost: log lines and bytes, memory, time.

A fresh afserver on loopback (no gateway, no web) and one afrender; P DEALER peers send N
messages from the seeded generator of bench/_malformed.py (bad frames, headers, versions,
types, worker messages, bodies that are not msgpack, nested, oversized, wrong types) while
a good client asks for the renders every 1,000 messages. Reported: the lines and bytes the
server's log grew by, the broker's and the scheduler's RSS before, at the end and after
settling, the slowest good answer, and the rate the broker took the garbage in; beside it the
raw pyzmq echo's round trips per second in the same run (bench/broker.py's reference) and
the load average.

Prints one JSON line on stdout; logs go to stderr; exits 1 when a process died or the good
client was not served.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import zmq  # noqa: E402

from bench._common import (  # noqa: E402
    afserver_env,
    ask,
    child,
    free_port,
    logs_on_failure,
    machine,
    report,
    settled_rss,
    spawn,
    stop_all,
    wait_for,
)
from bench._malformed import malformed  # noqa: E402
from broker import protocol as P  # noqa: E402
from broker.client import Client  # noqa: E402

SIZE_LIMIT = 65536


def echo_round_trips(seconds: float = 2.0) -> float:
    """Round trips per second of a bare pyzmq ROUTER echo on loopback: the reference."""
    ctx = zmq.Context()
    router, dealer = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealer.connect(f"tcp://127.0.0.1:{port}")
    n, end = 0, time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            dealer.send_multipart([b"h", b"b"])
            router.send_multipart(router.recv_multipart())
            dealer.recv_multipart()
            n += 1
    finally:
        router.close(0)
        dealer.close(0)
        ctx.term()
    return n / seconds


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="af-garbage-") as folder:
        tmp = Path(folder)
        port = free_port()
        env = afserver_env(tmp, port, af_message_size_max=SIZE_LIMIT)
        log_path = tmp / "afserver.log"
        server = spawn(["-m", "workers.supervisor"], env, log_path)
        render = spawn(["-m", "render.main", "--name", "r1"], env, tmp / "render.log")
        client = Client(P.endpoint("127.0.0.1", port), timeout=10.0)
        ctx = zmq.Context.instance()
        peers: list[zmq.Socket] = []

        def close() -> None:
            client.close()
            for peer in peers:
                peer.close(0)
            stop_all([render, server], "afserver")

        with logs_on_failure(tmp, close, 3000):
            wait_for(
                lambda: any(
                    r["online"]
                    for r in ask(client, {"get": {"type": "renders"}}, 2.0)["renders"]
                    if r["name"] == "r1"
                ),
                30,
                "the render online",
            )
            broker, scheduler = (
                child(server.pid, "broker.broker"),
                child(server.pid, "workers.scheduler.main"),
            )
            rss_before = {
                "broker": broker.memory_info().rss,
                "scheduler": scheduler.memory_info().rss,
            }
            log_before = log_path.stat().st_size, log_path.read_text(errors="replace").count("\n")
            for n in range(args.peers):
                peer = ctx.socket(zmq.DEALER)
                peer.setsockopt(zmq.LINGER, 0)
                peer.setsockopt(zmq.IDENTITY, b"garbage-%d" % n)
                peer.connect(P.endpoint("127.0.0.1", port))
                peers.append(peer)
            rng = random.Random(args.seed)
            slowest = 0.0
            began = time.monotonic()
            for n in range(args.messages):
                peers[n % args.peers].send_multipart(malformed(rng, SIZE_LIMIT))
                for peer in peers:
                    while peer.poll(0):
                        peer.recv_multipart()
                if n % 1000 == 999:
                    t = time.monotonic()
                    ask(client, {"get": {"type": "renders"}}, 10.0)
                    slowest = max(slowest, time.monotonic() - t)
            took = time.monotonic() - began
            rss_end = {"broker": broker.memory_info().rss, "scheduler": scheduler.memory_info().rss}
            rss_settled = {
                "broker": settled_rss(broker, 30),
                "scheduler": settled_rss(scheduler, 30),
            }
            time.sleep(1.5)  # the scheduler says its summaries on its next refresh
            text = log_path.read_text(errors="replace")
            log_size = log_path.stat().st_size
            alive = broker.is_running() and scheduler.is_running() and server.poll() is None
        echo = echo_round_trips()
    return {
        "bench": "garbage",
        "machine": machine(),
        "loadavg": os.getloadavg(),
        "messages": args.messages,
        "seed": args.seed,
        "log_lines_added": text.count("\n") - log_before[1],
        "log_bytes_added": log_size - log_before[0],
        "rss_before": rss_before,
        "rss_end": rss_end,
        "rss_settled": rss_settled,
        "slowest_good_answer_ms": round(slowest * 1000, 1),
        "messages_per_sec": round(args.messages / took),
        "echo_round_trips_per_sec": round(echo),
        "ratio_to_echo": round(args.messages / took / echo, 3),
        "ok": alive,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--peers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    report(lambda: run(args))


if __name__ == "__main__":
    main()
