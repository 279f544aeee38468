"""Round trips per second through the real server path, against a raw pyzmq echo.

Path measured: client DEALER -> broker ROUTER -> scheduler worker -> broker -> client, with
1, 100 and 1000 DEALER identities in one client process, each keeping exactly one request in
flight (closed loop). The denominator is a bare ROUTER that sends every message straight
back, measured in the same run with the same client code and the same request body, so the
ratio says what the broker hop and the scheduler cost, independent of the machine. Each count
runs --rounds pairs (server window, then echo window) and reports the median pair, with every
pair's ratio beside it: a shared machine's speed drifts by a third within a minute.

Prints one JSON line on stdout; logs go to stderr; exits 1 when any reply was an error.
CPU percentages are per process over the measured window, 100 meaning one core busy (a
process with a ZeroMQ I/O thread can go above).

Where the limit is (measured on 2 cores): with 1 identity every process idles below 50 %,
each round trip is a chain of wake-ups, so latency bounds it. With 100 and 1000 identities
broker (~75-85 %), scheduler (~50 %) and client (~50-60 %) together use the two cores: the
machine is saturated and the broker is the busiest hop, so a second client process would
only take CPU from the server. The raw echo at 100 and 1000 is bound by the one client
process (~90 %), and polling 1000 sockets costs it more than 100 do.
"""

from __future__ import annotations

import argparse
import logging
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as `python bench/broker.py`, this file's folder is sys.path[0] and its name would shadow
# the `broker` package: put the project root there instead, before importing it.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import zmq  # noqa: E402

from bench._common import (  # noqa: E402
    afserver_env,
    child,
    free_port,
    machine,
    report,
    spawn,
    stop,
)
from bench._echo import Echo  # noqa: E402
from broker import protocol as P  # noqa: E402

log = logging.getLogger("bench.broker")

# The cheapest request the scheduler answers with a REPLY: validated like any other, but on
# a fresh store it is an empty list to pack. No user_name, so no user is touched or stored.
REQUEST_BODY = {"get": {"type": "users"}}
WARMUP_SEC = 0.3
CONNECT_TIMEOUT = 20.0  # every identity answered once; 1000 connections take a moment
DRAIN_TIMEOUT = 10.0  # in-flight requests after the window, before the next run starts
START_TIMEOUT = 20.0
FDS_PER_SOCKET = 4  # TCP connection, mailbox, reaper and poller slack


# --- processes --------------------------------------------------------------------------


def start_afserver(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    """afserver on loopback with its own config, store and HOME, logging into tmp."""
    return spawn(["-m", "workers.supervisor"], afserver_env(tmp, port), tmp / "afserver.log")


def wait_ready(
    ctx: zmq.Context, endpoint: str, body: Any, expect: int, proc: subprocess.Popen[bytes]
) -> None:
    """Ask until the expected answer comes back: for afserver a REPLY, which only comes once
    the broker and the scheduler are both up (BROKER_STAT would only prove the broker)."""
    deadline = time.monotonic() + START_TIMEOUT
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(endpoint)
    try:
        request_id = 0
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"process for {endpoint} exited with code {proc.returncode}")
            request_id += 1
            dealer.send_multipart(P.message(P.MsgType.REQUEST, body, request_id))
            while dealer.poll(250):
                header = P.unpack_header(dealer.recv_multipart()[0])
                if header.request_id == request_id and header.type == expect:
                    return
        raise RuntimeError(f"no answer from {endpoint} within {START_TIMEOUT:g} s")
    finally:
        dealer.close(0)


# --- the closed-loop client -------------------------------------------------------------


def raise_fd_limit(sockets: int) -> None:
    """Enough descriptors for `sockets` DEALERs, never above the hard limit."""
    need = sockets * FDS_PER_SOCKET + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@dataclass(slots=True)
class Tally:
    ok: int = 0
    errors: int = 0
    first_error: str | None = None

    def error(self, text: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = text


@dataclass(slots=True)
class LoadClient:
    """N DEALER identities on one Poller, each with exactly one request in flight."""

    sockets: list[zmq.Socket]
    body: bytes
    expect: int  # REPLY from the server; the echo sends our REQUEST header back
    request_ids: dict[zmq.Socket, int] = field(default_factory=dict)
    answered: set[zmq.Socket] = field(default_factory=set)
    poller: zmq.Poller = field(default_factory=zmq.Poller)
    tally: Tally = field(default_factory=Tally)

    def start(self) -> None:
        for s in self.sockets:
            self.poller.register(s, zmq.POLLIN)
            self.send(s)

    def send(self, s: zmq.Socket) -> None:
        request_id = (self.request_ids.get(s, 0) + 1) & P.MAX_REQUEST_ID
        self.request_ids[s] = request_id
        s.send_multipart([P.pack_header(P.MsgType.REQUEST, request_id), self.body])

    def in_flight(self) -> int:
        return len(self.request_ids)

    def step(self, timeout_ms: int, resend: bool) -> None:
        """One poll: take every ready reply and, while measuring, send that identity's next."""
        for s, _ in self.poller.poll(timeout_ms):
            try:
                frames = s.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                continue
            self.check(s, frames)
            self.answered.add(s)
            if resend:
                self.send(s)
            else:
                del self.request_ids[s]

    def check(self, s: zmq.Socket, frames: list[bytes]) -> None:
        """Headers only: decoding every body would measure msgpack, not the transport."""
        header = P.unpack_header(frames[0])
        if header.request_id != self.request_ids.get(s):
            self.tally.error(f"reply to request {header.request_id}, expected another")
        elif header.type == self.expect:
            self.tally.ok += 1
        else:
            body = P.unpack_body(frames[1], 1 << 20) if len(frames) == 2 else None
            self.tally.error(f"{header.type_name}: {body}")


def open_sockets(ctx: zmq.Context, endpoint: str, count: int, tag: str) -> list[zmq.Socket]:
    sockets = []
    for i in range(count):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.IDENTITY, f"B:{tag}:{i}".encode())
        s.connect(endpoint)
        sockets.append(s)
    return sockets


@dataclass(slots=True)
class Window:
    rtps: float
    errors: int
    first_error: str | None
    cpu: dict[str, float]


def measure(
    endpoint: str,
    identities: int,
    seconds: float,
    expect: int,
    watched: dict[str, psutil.Process],
    tag: str,
) -> Window:
    """Warm up until every identity was answered once, count round trips in a fixed window,
    then collect what is still in flight so the next run starts on an idle server. A context
    of its own: destroying it waits until libzmq has reaped the sockets, so runs never add
    up against its socket limit."""
    ctx = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, identities + 16)
    try:
        sockets = open_sockets(ctx, endpoint, identities, tag)
        client = LoadClient(sockets, P.pack_body(REQUEST_BODY), expect)
        client.start()
        warm_end = time.monotonic() + WARMUP_SEC
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while time.monotonic() < warm_end or len(client.answered) < identities:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(client.answered)} of {identities} identities answered")
            client.step(100, resend=True)
        client.tally.ok = 0  # errors of every phase count; round trips only in the window
        for proc in watched.values():
            proc.cpu_percent(None)
        started = time.monotonic()
        end = started + seconds
        while (now := time.monotonic()) < end:
            client.step(max(1, int((end - now) * 1000)), resend=True)
        elapsed = time.monotonic() - started
        cpu = {name: round(proc.cpu_percent(None), 1) for name, proc in watched.items()}
        done = client.tally.ok
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while client.in_flight() and time.monotonic() < deadline:
            client.step(100, resend=False)
        if client.in_flight():
            log.warning("%d requests still unanswered after the window", client.in_flight())
        tally = client.tally
        return Window(done / elapsed, tally.errors, tally.first_error, cpu)
    finally:
        ctx.destroy(0)


# --- the run ----------------------------------------------------------------------------


def row(identities: int, server: Window, raw: Window) -> dict[str, Any]:
    out: dict[str, Any] = {
        "identities": identities,
        "server_rtps": round(server.rtps),
        "raw_echo_rtps": round(raw.rtps),
        "ratio": round(server.rtps / raw.rtps, 3) if raw.rtps else None,
        "errors": server.errors + raw.errors,
        "broker_cpu_pct": server.cpu["broker"],
        "scheduler_cpu_pct": server.cpu["scheduler"],
        "client_cpu_pct": server.cpu["client"],
        "raw_echo_cpu_pct": raw.cpu["echo"],
        "raw_client_cpu_pct": raw.cpu["client"],
    }
    if server.first_error or raw.first_error:
        out["first_error"] = server.first_error or raw.first_error
    return out


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The round whose ratio is the median, with every round's ratio beside it (and the
    errors of all rounds): one 3 s window on a shared machine can be 30 % off."""
    ranked = sorted(rows, key=lambda r: r["ratio"] if r["ratio"] is not None else -1.0)
    out = dict(ranked[len(ranked) // 2])
    out["ratios"] = [r["ratio"] for r in rows]
    out["errors"] = sum(r["errors"] for r in rows)
    first = next((r["first_error"] for r in rows if r.get("first_error")), None)
    if first:
        out["first_error"] = first
    return out


def run(seconds: float, counts: list[int], rounds: int = 3) -> dict[str, Any]:
    """Both servers up side by side; for each N, `rounds` times the server path then the
    echo; the median round is reported."""
    raise_fd_limit(max(counts) + 16)
    server = echo = None
    with tempfile.TemporaryDirectory(prefix="afbench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            server_port, echo_port = free_port(), free_port()
            server = start_afserver(tmp, server_port)
            echo = Echo("raw", echo_port)  # the raw ROUTER echo, a process of its own
            server_ep = P.endpoint("127.0.0.1", server_port)
            echo_ep = P.endpoint("127.0.0.1", echo_port)
            with zmq.Context() as ctx:
                try:
                    wait_ready(ctx, server_ep, {"get": {"type": "stat"}}, P.MsgType.REPLY, server)
                except RuntimeError:
                    sys.stderr.write((tmp / "afserver.log").read_text(errors="replace")[-4000:])
                    raise
            me = psutil.Process()
            on_server = {
                "broker": child(server.pid, "broker.broker"),
                "scheduler": child(server.pid, "workers.scheduler.main"),
                "client": me,
            }
            on_echo = {"echo": echo.ps, "client": me}
            results = []
            for n in counts:
                rows = []
                for _ in range(rounds):  # pairs side by side in time: the machine drifts
                    srv = measure(server_ep, n, seconds, P.MsgType.REPLY, on_server, f"s{n}")
                    raw = measure(echo_ep, n, seconds, P.MsgType.REQUEST, on_echo, f"e{n}")
                    rows.append(row(n, srv, raw))
                results.append(median_row(rows))
                log.info("%s", results[-1])
        finally:
            stop(server, "afserver")
            if echo is not None:
                echo.close()
    return {
        "bench": "broker",
        "machine": machine(libzmq=zmq.zmq_version()),
        "seconds": seconds,
        "rounds": rounds,
        "request": REQUEST_BODY,
        "ok": not any(r["errors"] for r in results),
        "results": results,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured time per run")
    parser.add_argument("--rounds", type=int, default=3, help="server/echo pairs per count")
    parser.add_argument(
        "--identities", default="1,100,1000", help="comma-separated concurrent DEALER counts"
    )
    args = parser.parse_args(argv)
    try:
        args.counts = [int(x) for x in args.identities.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--identities must be integers, got {args.identities!r}")
    if not args.counts or min(args.counts) < 1 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--identities, --rounds and --seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report(lambda: run(args.seconds, args.counts, args.rounds))


if __name__ == "__main__":
    main()
