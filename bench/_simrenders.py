"""Simulated renders: many afrender identities played from one process, on the real wire.

Each render has its own DEALER under an afrender-style identity and speaks afrender's
protocol (render/main.py, render/tasks.py, render/pace.py): it registers (again with growing
pauses while unanswered), heartbeats every heartbeat_sec (an idle beat waits while the last
is unanswered)
with plausible resources (the full set every resources_update_period beats), reports its
running tasks, and keeps each final result in an outbox, sent at once when the task ends
and again on later beats until the server closes it. A task "runs" for task_seconds of
simulated time: no subprocess, so the figures are the server's, not the shells'.

One process holds thousands of connections: each is a ZMTP DEALER of its own over a plain
TCP socket (bench/_zmtp.py: on the wire what afrender's libzmq DEALER is, at a fraction of
the CPU), readiness comes from an epoll selector (the cost of a pass is the sockets that
have something, not all of them), and beats and task ends come off one heap of deadlines.
Times in samples are wall-clock (time.time()), so samples from several simulator processes
can be merged.

Not a benchmark on its own (the leading underscore keeps `make bench` away): bench/simfarm.py
drives it, and tests/integration/test_simfarm.py runs it briefly for correctness.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import selectors
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import msgpack

from bench._zmtp import Dealer, ZmtpError, parse_endpoint
from broker import protocol as P
from render import pace

log = logging.getLogger("bench.sim")

Key = tuple[int, int, int, int]  # job id, block id, task id, attempt
RESOURCES_PERIOD = 5  # af_render_up_resources_period
ZOMBIE_TIME = 16.0  # af_render_zombietime: no answer this long is counted as a silence
RECONNECT_SEC = 0.2  # as libzmq's reconnect interval
_BEAT, _TASK_END, _REGISTER, _CONNECT = 0, 1, 2, 3
_READ, _READ_WRITE = selectors.EVENT_READ, selectors.EVENT_READ | selectors.EVENT_WRITE


def resources(n: int, busy: bool) -> dict[str, Any]:
    """A plausible host_resources snapshot: the keys render/resources.py sends, numbers that
    vary a little by host and load (the server stores them; solving reads mem/hdd/cpu)."""
    load = 85.0 if busy else 2.0
    return {
        "cpu_num": 16, "cpu_mhz": 3000 + n % 7 * 100, "cpu_temp": 55 if busy else 38,
        "cpu_loadavg": [load / 6, load / 7, load / 8],
        "cpu_user": load, "cpu_nice": 0.0, "cpu_system": 3.0, "cpu_idle": 100.0 - load - 3.0,
        "cpu_iowait": 0.2, "cpu_irq": 0.0, "cpu_softirq": 0.1,
        "mem_total_mb": 65536, "mem_free_mb": 20000 if busy else 60000 - n % 50,
        "mem_cached_mb": 3000, "mem_buffers_mb": 200, "swap_total_mb": 8192, "swap_used_mb": 0,
        "hdd_total_gb": 1000, "hdd_free_gb": 700 - n % 100, "hdd_rd_kbsec": 120,
        "hdd_wr_kbsec": 400 if busy else 10, "hdd_busy": 3, "net_recv_kbsec": 50,
        "net_send_kbsec": 20, "gpu_gpu_util": 0, "gpu_gpu_temp": 0, "gpu_mem_total_mb": 0,
        "gpu_mem_used_mb": 0, "gpu_string": "", "hw_info": "sim x86_64", "logged_in_users": [],
    }  # fmt: skip


@dataclass
class Samples:
    """What one simulator process saw; plain lists, merged by the caller."""

    heartbeats: list[tuple[float, float]] = field(default_factory=list)  # sent at, reply secs
    registrations: list[tuple[float, float]] = field(default_factory=list)  # sent at, secs
    dispatch: list[tuple[float, float]] = field(default_factory=list)  # ready since, start at
    starts: list[Key] = field(default_factory=list)
    closes: int = 0
    stops: int = 0
    errors: list[str] = field(default_factory=list)
    reregistered: int = 0  # the server said "register again"
    silences: int = 0  # no answer for longer than the zombie time (the render goes on)
    beats_held: int = 0  # idle beats not sent: the last one was still unanswered
    shed: int = 0  # requests the busy server refused with OVERLOADED
    lost: int = 0  # requests a stopping scheduler took and never answered (LOST): sent again
    send_failures: int = 0
    reconnects: int = 0  # connections lost (or refused) and made again

    def merge(self, other: Samples) -> None:
        self.heartbeats += other.heartbeats
        self.registrations += other.registrations
        self.dispatch += other.dispatch
        self.starts += other.starts
        self.closes += other.closes
        self.stops += other.stops
        self.errors += other.errors
        self.reregistered += other.reregistered
        self.silences += other.silences
        self.beats_held += other.beats_held
        self.shed += other.shed
        self.lost += other.lost
        self.send_failures += other.send_failures
        self.reconnects += other.reconnects


@dataclass(slots=True, eq=False)
class SimRender:
    n: int
    name: str
    link: Dealer | None = None
    identity: bytes = b""  # kept over reconnects, as a libzmq DEALER keeps its own
    writing: bool = False  # the selector also waits for the link to take more
    id: int = 0
    ids: int = 0
    beats: int = 0
    last_reply: float = 0.0
    next_register: float = 0.0  # monotonic
    register_attempts: int = 0  # unanswered in a row (pace.register_retry)
    beat_sent: float | None = None  # monotonic: the heartbeat in flight, while unanswered
    beat_request: int = 0
    silent: bool = False  # a silence was counted and no reply came since
    ready_since: float = 0.0  # wall time a slot became free (0: none free, or not yet online)
    pending: dict[int, tuple[int, float, bool]] = field(default_factory=dict)  # type, at, beat
    running: dict[Key, float] = field(default_factory=dict)  # -> wall time it started
    outbox: dict[Key, list[Any]] = field(default_factory=dict)  # -> [report, last sent]
    idle_beats: tuple[int, int, bytes, bytes] | None = None  # id, seen, beat, with resources
    events_seen: int = 0  # the last push ("seq") applied, echoed as afrender does


class Engine:
    """Renders of one process, driven by `run` (until a deadline or a stop callback)."""

    def __init__(
        self,
        endpoint: str,
        names: list[str],
        heartbeat_sec: float = 1.0,
        task_seconds: float = 0.0,
        first: int = 0,
        seed: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.random = random.Random(seed)
        self.heartbeat_sec = heartbeat_sec
        self.zombie_time = ZOMBIE_TIME  # the server's value comes with the registration reply
        self.task_seconds = task_seconds
        self.address = parse_endpoint(endpoint)
        self.selector = selectors.DefaultSelector()
        self.renders = [SimRender(first + i, name) for i, name in enumerate(names)]
        self.timers: list[tuple[float, int, int, SimRender, Any]] = []
        self._seq = itertools.count()
        self.samples = Samples()
        self.started_count = 0  # read by a caller between passes (progress)
        self.closing = False  # close() began: pushes are no longer acted on

    # --- connections ---------------------------------------------------------------------

    def connect(self, render: SimRender) -> None:
        if not render.identity:
            render.identity = f"R:{render.name}:{uuid.uuid4().hex[:12]}".encode()
        try:
            link = Dealer(self.address, render.identity)
        except ZmtpError as exc:
            self._lost(render, exc)
            return
        render.link, render.writing = link, True  # the greeting goes first
        self.selector.register(link, _READ_WRITE, render)

    def _unlink(self, render: SimRender) -> None:
        if render.link is not None:
            self.selector.unregister(render.link)
            render.link.close()
            render.link = None

    def _lost(self, render: SimRender, exc: ZmtpError) -> None:
        """A connection failed: connect again soon, as libzmq does; the render keeps its id
        and its identity, and what it holds is sent again on its next beats."""
        log.info("%s: %s; reconnecting", render.name, exc)
        self.samples.reconnects += 1
        self._unlink(render)
        render.pending.clear()
        if not self.closing:
            self._at(time.monotonic() + RECONNECT_SEC, _CONNECT, render)

    def disconnect(self, render: SimRender) -> None:
        self._unlink(render)
        render.id = 0
        render.pending.clear()

    def start(self, now_mono: float) -> None:
        """Connect every render and spread their first beats over one heartbeat period, as
        a farm's hosts are spread (they were not all switched on in the same millisecond)."""
        count = max(1, len(self.renders))
        for i, render in enumerate(self.renders):
            self.connect(render)
            self._at(now_mono + self.heartbeat_sec * i / count, _REGISTER, render)

    def close(self, deregister: bool = True, wait: float = 2.0) -> None:
        """Deregister (as afrender does on exit), wait a moment for the answers, close."""
        self.timers.clear()  # no more beats: an exiting afrender does not beat either
        # The server returns a leaving render's tasks to ready and starts them on renders
        # still online: right, but not a task started twice. Starts from now on are not run.
        self.closing = True
        if deregister:
            for render in self.renders:
                if render.id and render.link is not None:
                    self._send(render, P.MsgType.RENDER_DEREGISTER, {"id": render.id})
                    render.id = 0
            deadline = time.monotonic() + wait
            while any(r.pending for r in self.renders) and time.monotonic() < deadline:
                self.poll(min(0.05, deadline - time.monotonic()))
        for render in self.renders:
            self.disconnect(render)
        self.selector.close()

    # --- sending -------------------------------------------------------------------------

    def _send(self, render: SimRender, msg_type: int, body: Any, beat: bool = False) -> bool:
        """`body` is an object, or bytes already packed (an idle beat is the same every time:
        the simulator must cost far less than the renders it stands for)."""
        link = render.link
        render.ids = (render.ids + 1) & P.MAX_REQUEST_ID or 1
        packed = body if isinstance(body, bytes) else P.pack_body(body)
        sent = False
        if link is not None:
            try:
                sent = link.send([P.pack_header(msg_type, render.ids), packed])
            except ZmtpError as exc:
                self._lost(render, exc)
        if not sent or link is None:
            self.samples.send_failures += 1
            return False
        self._watch_writes(render, link)
        render.pending[render.ids] = (msg_type, time.time(), beat)
        if len(render.pending) > 1000:
            for key in list(render.pending)[:500]:
                del render.pending[key]
        return True

    def register(self, render: SimRender) -> None:
        body = {
            "name": render.name,
            "user_name": "render",
            "os": "linux 64 sim",
            "engine": "simfarm",
            "address": "127.0.0.1",
            "host": {"os": "linux", "cpu_num": 16, "cpu_mhz": 3000, "mem_total_mb": 65536},
            "host_resources": resources(render.n, False),
            "netifs": [],
            "time_launch": time.time(),
            "tasks": [report for report, _ in render.outbox.values()],
            "events_seen": render.events_seen,
        }
        render.register_attempts += 1
        self._send(render, P.MsgType.RENDER_REGISTER, body)
        pause = pace.register_retry(render.register_attempts, self.random.uniform(-1, 1))
        render.next_register = time.monotonic() + max(pause, self.heartbeat_sec)

    def beat(self, render: SimRender, now: float) -> None:
        """One heartbeat as afrender's beat(): resources now and then, reports, held runs;
        an idle beat waits while the last is unanswered."""
        if not render.id:
            if now >= render.next_register:
                self.register(render)
            return
        if now - render.last_reply > self.zombie_time and not render.silent:
            self.samples.silences += 1
            render.silent = True
        idle = not render.running and not render.outbox
        if idle and pace.beat_waits(render.beat_sent, now, self.heartbeat_sec):
            self.samples.beats_held += 1
            return
        render.beats += 1
        with_resources = render.beats % RESOURCES_PERIOD == 0
        if not render.running and not render.outbox:
            cache = render.idle_beats
            if cache is None or cache[:2] != (render.id, render.events_seen):
                beat = {"id": render.id, "tasks_held": [], "events_seen": render.events_seen}
                cache = render.idle_beats = (
                    render.id,
                    render.events_seen,
                    P.pack_body(beat),
                    P.pack_body({**beat, "host_resources": resources(render.n, False)}),
                )
            if self._send(render, P.MsgType.RENDER_BEAT, cache[3 if with_resources else 2], True):
                render.beat_sent, render.beat_request = now, render.ids
            return
        update: dict[str, Any] = {"id": render.id}
        if with_resources:
            update["host_resources"] = resources(render.n, bool(render.running))
        reports = [
            {"job_id": k[0], "block_id": k[1], "task_id": k[2], "attempt": k[3]}
            | {"status": "running", "percent": 50, "frame": 0, "activity": "", "warning": False}
            for k in render.running
        ]
        resend_after = max(2 * self.heartbeat_sec, 1.0)
        for final in render.outbox.values():
            if now - final[1] >= resend_after:
                final[1] = now
                reports.append(final[0])
        if reports:
            update["tasks"] = reports
        update["tasks_held"] = [list(k) for k in render.running] + [list(k) for k in render.outbox]
        update["events_seen"] = render.events_seen
        msg_type = P.MsgType.RENDER_UPDATE if reports else P.MsgType.RENDER_BEAT
        if self._send(render, msg_type, update, beat=True):
            render.beat_sent, render.beat_request = now, render.ids

    def finish(self, render: SimRender, key: Key, status: str, now: float) -> None:
        """A task ended: its final goes to the outbox and to the server at once."""
        started = render.running.pop(key, None)
        if started is None:
            return
        report = {
            "job_id": key[0],
            "block_id": key[1],
            "task_id": key[2],
            "attempt": key[3],
            "status": status,
            "explain": "exit 0" if status == "success" else status,
            "output": b"",
            "exit_code": 0 if status == "success" else -15,
            "percent": 100 if status == "success" else 50,
            "warning": False,
            "time_start": started,
            "time_done": now,
        }
        render.outbox[key] = [report, now]
        if not render.running:
            render.ready_since = now
        if render.id:
            self._send(render, P.MsgType.RENDER_UPDATE, {"id": render.id, "tasks": [report]})

    # --- receiving -----------------------------------------------------------------------

    def _ready(self, render: SimRender, events: int) -> None:
        """The selector says the render's link can be written, read, or both."""
        link = render.link
        if link is None:
            return
        try:
            if events & selectors.EVENT_WRITE:
                link.flush()
            if events & selectors.EVENT_READ:
                for frames in link.read():  # the server's READY releases what was held
                    self._message(render, frames)
        except ZmtpError as exc:
            self._lost(render, exc)
            return
        if render.link is link:  # not lost while a message was acted on
            self._watch_writes(render, link)

    def _watch_writes(self, render: SimRender, link: Dealer) -> None:
        """The selector waits for the link to be writable while, and only while, it holds
        bytes the kernel has not taken yet."""
        if link.wants_write != render.writing:
            render.writing = link.wants_write
            self.selector.modify(link, _READ_WRITE if render.writing else _READ, render)

    def _message(self, render: SimRender, frames: list[bytes]) -> None:
        now = time.time()
        try:
            header = P.unpack_header(frames[0])
            body = msgpack.unpackb(frames[1], raw=False)
        except (P.ProtocolError, IndexError, ValueError) as exc:
            self.samples.errors.append(f"{render.name}: bad message: {exc}")
            return
        sent = render.pending.pop(header.request_id, None) if header.request_id else None
        mono = render.last_reply = time.monotonic()
        render.silent = False
        if header.request_id and header.request_id == render.beat_request:
            render.beat_sent = None
        if sent is not None:
            if sent[2]:
                self.samples.heartbeats.append((sent[1], now - sent[1]))
            elif sent[0] == P.MsgType.RENDER_REGISTER:
                self.samples.registrations.append((sent[1], now - sent[1]))
        if header.type == P.MsgType.ERROR:
            code = body.get("code") if isinstance(body, dict) else None
            if code == P.ErrorCode.OVERLOADED:
                self.samples.shed += 1  # as afrender: wait, then try again
                if sent is not None and sent[0] == P.MsgType.RENDER_BEAT:
                    render.beat_sent = mono
                return
            if code == P.ErrorCode.LOST:
                self.samples.lost += 1  # as afrender: what it was is sent again in time
                return
            self.samples.errors.append(f"{render.name}: {body.get('error', body)}")
            return
        if header.type == P.MsgType.RENDER_EVENTS and isinstance(body, dict):
            self._events(render, body, now)

    def _events(self, render: SimRender, body: dict[str, Any], now: float) -> None:
        new_id = body.get("id")
        if not isinstance(new_id, int) or self.closing:
            return
        if new_id < 0:
            if render.id:
                self.samples.reregistered += 1
                self.samples.errors.append(f"{render.name}: {body.get('reason', 'unknown')}")
                render.next_register = time.monotonic() + self.random.random()
                render.register_attempts = 0
            render.id = 0
            render.beat_sent = None
            return
        if not render.id:
            render.id = new_id
            render.register_attempts = 0
            if not render.running:
                render.ready_since = now
        zombie_time = body.get("zombie_time")
        if isinstance(zombie_time, (int, float)) and zombie_time > 0:
            self.zombie_time = float(zombie_time)
        for task in body.get("tasks_start") or ():
            key = (task["job_id"], task["block_id"], task["task_id"], task["attempt"])
            if key in render.running or key in render.outbox:
                continue  # a repeated start: it runs already
            self.samples.starts.append(key)
            self.started_count += 1
            if render.ready_since:
                self.samples.dispatch.append((render.ready_since, now))
                render.ready_since = 0.0
            render.running[key] = now
            if self.task_seconds <= 0:
                self.finish(render, key, "success", now)
            else:
                self._at(time.monotonic() + self.task_seconds, _TASK_END, render, key)
        seq = body.get("seq")
        if isinstance(seq, int) and seq > render.events_seen:
            render.events_seen = seq
        for key in body.get("tasks_stop") or ():
            self.samples.stops += 1
            self.finish(render, tuple(key), "killed", now)  # type: ignore[arg-type]
        for key in body.get("tasks_close") or ():
            if render.outbox.pop(tuple(key), None) is not None:  # type: ignore[arg-type]
                self.samples.closes += 1

    # --- loop ----------------------------------------------------------------------------

    def _at(self, when: float, kind: int, render: SimRender, data: Any = None) -> None:
        heapq.heappush(self.timers, (when, next(self._seq), kind, render, data))

    def poll(self, timeout: float) -> None:
        """One pass: sockets with something to read, then every deadline that is due."""
        for sel_key, events in self.selector.select(max(0.0, timeout)):
            self._ready(sel_key.data, events)
        mono = time.monotonic()
        timers = self.timers
        while timers and timers[0][0] <= mono:
            due, _, kind, render, data = heapq.heappop(timers)
            if kind == _CONNECT:
                self.connect(render)
                continue
            now = time.time()
            if kind == _TASK_END:
                self.finish(render, data, "success", now)
                continue
            if kind == _REGISTER:
                self.register(render)
            else:
                self.beat(render, mono)
            self._at(self._next_beat(due, mono), _BEAT, render)

    def _next_beat(self, due: float, now: float) -> float:
        """A period after the beat was due, not after it was sent: a pass that came late
        would otherwise give every render it served the same next beat, and the renders of
        one process would clump into bursts a real farm's independent hosts never send."""
        later = due + self.heartbeat_sec
        while later <= now:  # more than a period behind: keep the phase, skip what is gone
            later += self.heartbeat_sec
        return later

    def run(self, until: float, stop: Any = None) -> None:
        """Until the monotonic deadline, or until stop() is true (looked at every 0.1 s)."""
        next_look = 0.0
        while True:
            mono = time.monotonic()
            if mono >= until:
                return
            if stop is not None and mono >= next_look:
                if stop():
                    return
                next_look = mono + 0.1
            wait = min(until, next_look if stop is not None else until) - mono
            if self.timers:
                wait = min(wait, self.timers[0][0] - mono)
            self.poll(wait)

    def online(self) -> int:
        return sum(1 for r in self.renders if r.id)


def raise_fd_limit() -> int:
    """Thousands of sockets need thousands of descriptors: take the hard limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def sim_names(count: int, first: int = 0, prefix: str = "sim") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(first, first + count)]
