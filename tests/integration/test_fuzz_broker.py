"""10,000 malformed messages at the broker's port, from a seeded generator, with raw TCP
garbage and silent connections beside them: every process stays up, a good client and a
render are served all along, the log grows by a bounded number of lines, the broker's and
the scheduler's memory come back, silent connections are closed, and afserver still stops
within 5 s."""

from __future__ import annotations

import os
import random
import signal
import socket
import time

import psutil
import pytest
import zmq

from bench._malformed import malformed
from broker import protocol as P
from tests.conftest import Farm, wait_for

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("AF_FUZZ_SEED", "2026"))
MESSAGES = 10_000
PEERS = 8
SIZE_LIMIT = 65536
CHECK_EVERY = 500  # a good request between this many bad ones
LOG_LINES_MAX = 150  # for the whole run: kinds said once, then counted


def rss(proc: psutil.Process) -> int:
    return proc.memory_info().rss


def test_malformed_messages_harm_nothing(make_farm) -> None:  # type: ignore[no-untyped-def]
    farm: Farm = make_farm(af_message_size_max=SIZE_LIMIT)
    farm.start_server()
    farm.start_render("render-a")
    wait_for(lambda: farm.online() == {"render-a"}, 20, "render online")
    procs = {m: farm.child(m) for m in ("broker.broker", "workers.scheduler.main")}
    for _ in range(50):  # warm up the paths a good client takes
        farm.ask({"get": {"type": "renders"}})
    start_rss = {m: rss(p) for m, p in procs.items()}
    log_lines = farm.log("afserver").count("\n")

    rng = random.Random(SEED)
    ctx = zmq.Context.instance()
    peers = []
    for n in range(PEERS):
        peer = ctx.socket(zmq.DEALER)
        peer.setsockopt(zmq.LINGER, 0)
        peer.setsockopt(zmq.IDENTITY, b"fuzz-%d" % n)
        peer.connect(P.endpoint("127.0.0.1", farm.port))
        peers.append(peer)
    silent = [socket.create_connection(("127.0.0.1", farm.port)) for _ in range(10)]
    garbage = []
    for _ in range(10):
        raw = socket.create_connection(("127.0.0.1", farm.port))
        raw.sendall(rng.randbytes(rng.randrange(1, 4096)))
        garbage.append(raw)

    slowest = 0.0
    try:
        for n in range(MESSAGES):
            peers[n % PEERS].send_multipart(malformed(rng, SIZE_LIMIT))
            for peer in peers:  # read what comes back, so no queue fills
                while peer.poll(0):
                    peer.recv_multipart()
            if n % CHECK_EVERY == CHECK_EVERY - 1:
                began = time.monotonic()
                renders = farm.ask({"get": {"type": "renders"}})["renders"]
                slowest = max(slowest, time.monotonic() - began)
                assert {r["name"] for r in renders if r["online"]} >= {"render-a"}
        for module, proc in procs.items():
            assert proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE, module
            assert farm.child(module).pid == proc.pid, f"{module} was restarted"
        assert farm.online() == {"render-a"}
        assert slowest < 2.0, slowest

        # connections that never sent a greeting are closed by the broker (10 s handshake)
        def closed(conn: socket.socket) -> bool:
            conn.settimeout(0.05)
            try:
                while True:
                    if not conn.recv(4096):
                        return True
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True

        wait_for(lambda: all(closed(c) for c in silent), 25, "silent connections closed")
    finally:
        for peer in peers:
            peer.close(0)
        for conn in silent + garbage:
            conn.close()

    added = farm.log("afserver").count("\n") - log_lines
    assert added <= LOG_LINES_MAX, farm.log("afserver")[-5000:]
    assert "Traceback" not in farm.log("afserver")
    for module, proc in procs.items():
        wait_for(
            lambda proc=proc, module=module: rss(proc) <= start_rss[module] * 1.2,
            20,
            f"{module} RSS back within 20 % of {start_rss[module]} (now {rss(proc)})",
        )

    # and afserver still stops at once, garbage connections and all
    garbage = [socket.create_connection(("127.0.0.1", farm.port)) for _ in range(20)]
    try:
        for conn in garbage:
            conn.sendall(b"\x01\xff" * 10)
        assert farm.server is not None
        began = time.monotonic()
        farm.server.send_signal(signal.SIGTERM)
        farm.server.wait(10)
        assert time.monotonic() - began < 5
    finally:
        for conn in garbage:
            conn.close()
