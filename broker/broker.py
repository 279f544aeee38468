"""The ROUTER broker: routes client and render messages to the worker that serves them.

One blocking Poller loop that drains the socket, with a timeout equal to the next
housekeeping deadline (worker heartbeats, dead workers, requests that waited too long).
The broker reads headers only; bodies are forwarded as they came.
"""

from __future__ import annotations

import errno
import logging
import resource
import signal
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import zmq

from auth import curve
from auth import keys as K
from broker import EXIT_PORT_IN_USE, workerlink
from broker import protocol as P
from broker.rarelog import RareLog
from broker.replytimes import ReplyTimes
from broker.services import Kind, Queued, Registry, Worker
from broker.workerlink import WorkerLink
from workers import watchdog

log = logging.getLogger("broker")

DRAIN_BATCH = 2000  # messages handled before housekeeping gets a look in
# After a pass that saw heartbeats only, the next begins no sooner than this: 10,000 renders'
# heartbeats come 100 µs apart, and a pass for each (a poll, a drain that ends in EAGAIN, the
# flush and housekeeping looks) cost more than the heartbeat; those that come meanwhile share
# the pass. A pass that saw a request or a reply is followed at once: someone waits on it; so
# is a pass that came more than CROWDED_SEC after the one before: heartbeats that come that
# rarely (ten idle renders) have no company to wait for, and the gap was one more wakeup each.
PASS_GAP_SEC = 0.001
CROWDED_SEC = 0.01
_NEVER = float("inf")
BACKLOG_RETRY_SEC = 0.01  # how soon to retry queued requests when a worker was saturated
GATHER_SEC = 0.002  # how long a heartbeat waits for others to join its batch to the worker
QUIET_SEC = 10 * GATHER_SEC  # ...unless none went for this long: then it goes at once
# A beat with nothing new (RENDER_BEAT) is answered by the broker at once: all it asks is
# "are you there", and the scheduler's answer would only echo the render's id. The scheduler
# still reads every beat (resources, tasks held, liveness), gathered for up to this long into
# one batch and without a reply of its own unless it has something to say (register again,
# refused). Ten idle renders cost it four wakeups a second, not ten, and a busy scheduler no
# longer makes 10,000 renders wait for their answers.
BEAT_GATHER_SEC = 0.25
# ...and they ride along with a pass that comes anyway: only a queue of beats this old wakes
# the loop on its own (Registry.wake_at). The scheduler judges liveness over tens of seconds
# (zombie time) and a late beat's tasks_held by the pushes it echoes (Farm.check_held).
BEAT_LATE_SEC = 1.5
_BEAT_ACK_BODY = P.pack_body({})
# what thousands of renders send every second: gathered into batches for the scheduler
_GATHERED = frozenset({P.MsgType.RENDER_BEAT, P.MsgType.RENDER_UPDATE})
# how each type may be treated while it waits (services.Kind); the rest are ASKED
_KINDS = {
    P.MsgType.RENDER_BEAT: Kind.BEAT,
    P.MsgType.RENDER_REGISTER: Kind.REGISTRATION,
    P.MsgType.RENDER_UPDATE: Kind.RESERVED,
    P.MsgType.RENDER_DEREGISTER: Kind.RESERVED,
}
WORKER_HWM = 200_000
CLIENT_HWM = 10_000
WARN_EVERY_SEC = 10.0  # a misbehaving peer repeats itself; so would the log
# A TCP peer that has not finished the ZeroMQ greeting by then is dropped (libzmq's default
# is 30 s): half-open connections from port scanners and garbage senders do not pile up.
HANDSHAKE_SEC = 10.0
# ZMTP heartbeats (libzmq answers them in its I/O thread, the loop never sees them): a peer
# that stops in the middle of a message, or stops answering, is dropped after the timeout.
# (A peer whose garbage looks like the old ZMTP/1.0 gets no heartbeats from libzmq; under
# af_auth = curve such peers are refused at once.)
PING_SEC = 30.0
PING_TIMEOUT_SEC = 60.0

_W_REQUESTS = P.pack_header(P.MsgType.W_REQUESTS)
_NO_REQUEST_ID = bytes(4)  # pushes and fire-and-forget messages: nobody waits for a reply


def _type_bytes(msg_type: int) -> bytes:
    """A type as it stands in a header (bytes 2-3): compared without unpacking."""
    return P.HEADER.pack(0, msg_type, 0)[2:4]


# nobody waits on a render's beats and reports (P.awaited): after a pass of these only, the
# gap applies
_UNHURRIED = frozenset(_type_bytes(t) for t in _GATHERED)
_HANDSHAKE_FAILURES = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    bind: str  # e.g. tcp://*:51000
    link: WorkerLink  # where afserver's own workers connect, and their secret
    heartbeat_sec: float = 1.0
    liveness: int = 3
    request_timeout: float = 10.0
    queue_max: int = 10_000
    message_size_max: int = 64 * 1024 * 1024
    ipv6: bool = False
    keys_folder: str = ""  # af_auth = curve: the key store; empty = the trusted mode


class Counters:
    """Messages in / out / dropped per message type, and errors per code."""

    def __init__(self) -> None:
        self.by_type: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.errors: dict[str, int] = defaultdict(int)

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": {
                P.type_name(t): {"in": c[0], "out": c[1], "dropped": c[2]}
                for t, c in sorted(self.by_type.items())
            },
            "errors": dict(self.errors),
        }


class Broker:
    def __init__(self, settings: BrokerSettings, ctx: zmq.Context | None = None) -> None:
        self.settings = settings
        self.ctx = ctx or zmq.Context.instance()
        self.registry = Registry(
            liveness_sec=settings.heartbeat_sec * settings.liveness,
            rest_liveness_sec=P.rest_heartbeat(settings.heartbeat_sec) * settings.liveness,
            request_timeout=settings.request_timeout,
            queue_max=settings.queue_max,
        )
        self.counters = Counters()
        self.reply_times = ReplyTimes()
        self.started = time.time()
        self.accepted = 0  # TCP connections accepted: persistent peers keep this low
        self.running = False
        self.socket = self.ctx.socket(zmq.ROUTER)
        s = self.socket
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.ROUTER_MANDATORY, 1)
        s.setsockopt(zmq.ROUTER_HANDOVER, 1)
        s.setsockopt(zmq.BACKLOG, 4096)
        s.setsockopt(zmq.HANDSHAKE_IVL, int(HANDSHAKE_SEC * 1000))
        s.setsockopt(zmq.HEARTBEAT_IVL, int(PING_SEC * 1000))
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(PING_TIMEOUT_SEC * 1000))
        s.setsockopt(zmq.SNDHWM, WORKER_HWM)
        s.setsockopt(zmq.RCVHWM, WORKER_HWM)
        # Hard cap: a peer sending far beyond the limit is disconnected by libzmq before we
        # ever buffer it; bodies between the limit and the cap get a TOO_LARGE error reply.
        s.setsockopt(zmq.MAXMSGSIZE, settings.message_size_max * 2 + 65536)
        if settings.ipv6:
            s.setsockopt(zmq.IPV6, 1)
        self.monitor = s.get_monitor_socket(_HANDSHAKE_FAILURES | zmq.EVENT_ACCEPTED)
        self.auth: curve.KeyAuthenticator | None = None
        if settings.keys_folder:
            folder = Path(settings.keys_folder)
            curve.secure_server(s, K.server_keys(folder))
            self.auth = curve.start_authenticator(self.ctx, folder)
        self.rare = RareLog(log, WARN_EVERY_SEC)
        s.bind(settings.bind)
        self.endpoint = s.getsockopt(zmq.LAST_ENDPOINT).decode()
        # afserver's own workers: a private socket of their own (workerlink.py)
        self.workers = w = self.ctx.socket(zmq.ROUTER)
        w.setsockopt(zmq.LINGER, 0)
        w.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # no ROUTER_HANDOVER: a worker's route is never taken by another connection of its
        # name; workers connect under a new identity each time (workers/base.py)
        w.setsockopt(zmq.SNDHWM, WORKER_HWM)
        w.setsockopt(zmq.RCVHWM, WORKER_HWM)
        w.bind(settings.link.endpoint)
        self._next_heartbeat = 0.0
        self._check_at = _NEVER  # the earliest a worker may expire: housekeeping is due then
        self._retry_at = 0.0  # a saturated worker: queues wait until then (_flush_due)

    # --- sending -------------------------------------------------------------------------

    def _send(self, frames: list[bytes], msg_type: int, socket: zmq.Socket | None = None) -> bool:
        """Send to a peer by identity (a client or render, or a worker on `socket`); a
        vanished or saturated peer is counted, never fatal."""
        counts = self.counters.by_type[msg_type]
        try:
            P.send_frames(socket or self.socket, frames)
        except zmq.Again:
            counts[2] += 1
            self.rare.say(
                "a peer is not reading (queue full)",
                f"peer {_name(frames[0])} is not reading (queue full): {P.type_name(msg_type)} dropped",
            )
            return False
        except zmq.ZMQError as exc:
            if exc.errno != errno.EHOSTUNREACH:
                raise
            counts[2] += 1
            log.debug("peer %r is gone: %s dropped", frames[0], P.type_name(msg_type))
            return False
        counts[1] += 1
        return True

    def _error(self, client: bytes, request_id: int, code: P.ErrorCode, text: str) -> None:
        self.counters.errors[code.name] += 1
        self._send([client, *P.error_frames(request_id, code, text)], P.MsgType.ERROR)

    # --- receiving -----------------------------------------------------------------------

    def handle(self, frames: list[bytes], now: float, user: bytes | None = None) -> None:
        """One message from any peer. Nothing a peer sends may raise out of here.

        `user` is the name the peer's key proved (af_auth); None in the trusted mode."""
        identity = frames[0]
        if len(frames) < 2:
            self.counters.errors["BAD_MESSAGE"] += 1
            self.rare.say(
                "empty messages", f"peer {_name(identity)} sent an empty message; dropped"
            )
            return
        try:
            header = P.unpack_header(frames[1])
        except P.ProtocolError as exc:
            self.rare.say("bad headers", f"peer {_name(identity)}: {exc.text}")
            self._error(identity, 0, exc.code, exc.text)
            return
        msg_type = header.type
        if msg_type in P.WORKER_TYPES:
            # workers come through their private socket only (workerlink.py): a peer posing
            # as one here would be handed others' requests
            self.counters.errors["NOT_A_WORKER"] += 1
            self.rare.say(
                "worker messages on the farm's port",
                f"peer {_name(identity)} sent {P.type_name(msg_type)} on the farm's port; refused",
            )
            return
        self.counters.by_type[msg_type][0] += 1
        if len(frames) != 3:
            self._error(
                identity,
                header.request_id,
                P.ErrorCode.BAD_MESSAGE,
                f"expected 2 frames (header, body), got {len(frames) - 1}",
            )
            return
        if len(frames[2]) > self.settings.message_size_max:
            self.rare.say(
                "bodies over the limit", f"peer {_name(identity)} sent {len(frames[2])} bytes"
            )
            self._error(
                identity,
                header.request_id,
                P.ErrorCode.TOO_LARGE,
                f"message body of {len(frames[2])} bytes exceeds the limit of "
                f"{self.settings.message_size_max} bytes",
            )
            return
        if msg_type == P.MsgType.BROKER_STAT:
            reply = P.message(P.MsgType.REPLY, self.stat(now), header.request_id)
            self._send([identity, *reply], P.MsgType.REPLY)
            return
        service = P.SERVICE_OF_TYPE.get(msg_type)
        if service is None:
            self.rare.say("unknown types", f"peer {_name(identity)} sent message type {msg_type}")
            self._error(
                identity,
                header.request_id,
                P.ErrorCode.UNKNOWN_TYPE,
                f"unknown message type {msg_type}",
            )
            return
        self.reply_times.request(identity, frames[1], msg_type, now)
        self._route(service, identity, frames[1], frames[2], now, user, msg_type)

    def _route(
        self,
        service: str,
        client: bytes,
        header: bytes,
        body: bytes,
        now: float,
        user: bytes | None = None,
        msg_type: int = P.MsgType.REQUEST,
    ) -> None:
        """Queue a request for its service. The queue goes to a worker in batches when due
        (_flush_due), in order: a request never overtakes an earlier one."""
        kind = _KINDS.get(msg_type, Kind.ASKED)
        beat = kind is Kind.BEAT
        queued = self.registry.enqueue(
            service,
            client,
            header[:4] + _NO_REQUEST_ID if beat else header,  # the answer is ours: below
            body,
            now,
            user,
            msg_type in _GATHERED,
            kind,
        )
        if queued is not Queued.FULL and beat:
            ack = P.pack_header(P.MsgType.RENDER_EVENTS, P.HEADER.unpack(header)[2])
            self.reply_times.reply(client, ack, now)
            self._send([client, ack, _BEAT_ACK_BODY], P.MsgType.RENDER_EVENTS)
        if queued is Queued.QUEUED:
            return
        if queued is Queued.COALESCED:  # the one it replaced is counted as dropped
            self.counters.by_type[msg_type][2] += 1
            return
        self._error(
            client,
            P.HEADER.unpack(header)[2],
            P.ErrorCode.OVERLOADED,
            f"server busy: {self.registry.queued()[service]} requests already wait for "
            f"{service}; try again later",
        )

    def _forward(self, service: str, entries: list[list[Any]]) -> bool:
        """Hand one batch to a live worker; False when there is none that takes it now."""
        svc = self.registry.services[service]
        frames = [b"", _W_REQUESTS, P.pack_batch(entries)]
        while True:
            worker = svc.pick()
            if worker is None:
                return False
            frames[0] = worker.identity
            try:
                P.send_frames(self.workers, frames)
            except zmq.Again:
                return False
            except zmq.ZMQError as exc:
                if exc.errno != errno.EHOSTUNREACH:
                    raise
                log.warning("worker %r of %s is gone", worker.identity, service)
                self._worker_gone(worker)
                continue
            self.counters.by_type[P.MsgType.W_REQUESTS][1] += 1
            awaited = [(entry[0], entry[1][4:]) for entry in entries if P.awaited(entry[1])]
            if awaited:  # someone waits: the worker must be heard from soon (its pace too)
                self.registry.expect(worker, time.monotonic())
                self._check_at = min(self._check_at, worker.expiry)
                worker.inflight.update(awaited)
            return True

    def _from_worker(self, identity: bytes, msg_type: int, frames: list[bytes], now: float) -> None:
        """A message on the workers' socket."""
        self.counters.by_type[msg_type][0] += 1
        if msg_type == P.MsgType.W_READY:
            service = self._service_name(frames)
            if service is None:
                self.rare.say(
                    "refused workers",
                    f"peer {_name(identity)} sent W_READY without this start's secret or a valid "
                    "service; refused",
                )
                return
            known = identity in self.registry.workers
            self.registry.ready(identity, service, now)
            log.info("worker %r %s for %s", identity, "re-announced" if known else "ready", service)
            self._flush(service)
            return
        worker = self.registry.touch(identity, now)
        if worker is None:
            # A worker we do not know (we restarted, or it was expired): make it announce again.
            disconnect = [identity, P.pack_header(P.MsgType.W_DISCONNECT)]
            self._send(disconnect, P.MsgType.W_DISCONNECT, self.workers)
            return
        if msg_type == P.MsgType.W_HEARTBEAT:
            return
        if msg_type == P.MsgType.W_REPLIES and len(frames) == 3:
            self._replies(worker, frames[2])
            return
        if msg_type == P.MsgType.W_DISCONNECT:
            self._worker_gone(worker)
            log.info("worker %r of %s disconnected", identity, worker.service)
            return
        log.warning("worker %r sent a malformed %s; dropped", identity, P.type_name(msg_type))

    def _replies(self, worker: Worker, batch: bytes) -> None:
        """A worker's replies and pushes, each to its client."""
        try:
            replies = P.unpack_batch(batch, 3)
        except P.ProtocolError as exc:
            self.counters.errors["BAD_MESSAGE"] += 1
            log.warning("worker %r sent a malformed batch (%s); dropped", worker.identity, exc.text)
            return
        size = P.HEADER_SIZE
        unpack = P.HEADER.unpack
        now = time.monotonic()
        reply = self.reply_times.reply
        answered = worker.inflight.discard
        for frames in replies:
            header = frames[1]
            reply(frames[0], header, now)
            answered((frames[0], header[4:]))
            self._send(frames, unpack(header)[1] if len(header) == size else 0)

    def _worker_gone(self, worker: Worker) -> None:
        """A worker leaves (hung, killed, stopped): whoever waits for its answer is told now,
        not at the end of their timeout; what it took may or may not have taken effect."""
        self.registry.remove(worker.identity)
        for client, request_id in worker.inflight:
            self._error(
                client,
                int.from_bytes(request_id, "big"),
                P.ErrorCode.LOST,
                f"the {worker.service} stopped before answering (it hung or restarted): "
                "this request may or may not have taken effect; a read can simply be asked "
                "again, a change should be checked before it is sent again",
            )
        if worker.inflight:
            log.warning(
                "worker %r of %s left %d requests unanswered: told their clients",
                worker.identity,
                worker.service,
                len(worker.inflight),
            )
        worker.inflight.clear()

    def _service_name(self, frames: list[bytes]) -> str | None:
        """The service a READY announces, when it carries this start's secret."""
        if len(frames) != 3:
            return None
        try:
            body = P.unpack_body(frames[2], 4096)
        except P.ProtocolError:
            return None
        if not isinstance(body, dict) or not self.settings.link.admits(body.get("secret")):
            return None
        service = body.get("service")
        if isinstance(service, str) and 0 < len(service) <= 64:
            return service
        return None

    def _flush(self, service: str) -> bool:
        """Send a service's queue to its workers, a batch at a time (round robin). False when
        some stays queued: no worker, or none that takes more now."""
        svc = self.registry.service(service)
        queue = svc.queue
        while queue:
            batch = P.batches(list(islice(queue, P.BATCH_MAX)), _pending_size)[0]
            entries = [[p.client, p.header, p.body, p.user] for p in batch]
            if not self._forward(service, entries):
                return False
            for _ in batch:
                svc.popleft()
            svc.flushed = time.monotonic()
        svc.urgent = False
        return True

    def _flush_due(self, now: float) -> float:
        """Send the queues whose time has come (Registry.flush_at); returns when the loop must
        wake for the next (Registry.wake_at). A saturated worker is tried again
        BACKLOG_RETRY_SEC later, not in a spin."""
        registry = self.registry
        wake = float("inf")
        for name, svc in registry.services.items():
            at = registry.flush_at(svc, GATHER_SEC, P.BATCH_MAX, QUIET_SEC, BEAT_GATHER_SEC)
            if at <= now and now >= self._retry_at:
                if not self._flush(name):
                    self._retry_at = now + BACKLOG_RETRY_SEC
                at = registry.flush_at(svc, GATHER_SEC, P.BATCH_MAX, QUIET_SEC, BEAT_GATHER_SEC)
            wake = min(wake, registry.wake_at(svc, at, BEAT_LATE_SEC))
        return max(wake, self._retry_at)

    # --- housekeeping --------------------------------------------------------------------

    def housekeeping(self, now: float) -> float:
        """Heartbeats, dead workers, expired requests. Returns the next deadline."""
        if now >= self._next_heartbeat:
            header = P.pack_header(P.MsgType.W_HEARTBEAT)
            for identity in list(self.registry.workers):
                self._send([identity, header], P.MsgType.W_HEARTBEAT, self.workers)
            # at rest (no request waits for an answer) the workers need no word each second
            busy = any(w.inflight for w in self.registry.workers.values())
            every = self.settings.heartbeat_sec
            self._next_heartbeat = now + (every if busy else P.rest_heartbeat(every))
            self.rare.flush()
            self._notify_refusals(now)
        for worker in self.registry.expire_workers(now):
            log.warning(
                "worker %r of %s missed its heartbeats; removed", worker.identity, worker.service
            )
            self._worker_gone(worker)
        self._check_at = min((w.expiry for w in self.registry.workers.values()), default=_NEVER)
        for service, pending in self.registry.expire_requests(now):
            if pending.kind is Kind.BEAT:  # answered when it came; the next beat is on its way
                continue
            request_id = P.HEADER.unpack(pending.header)[2]
            self._error(
                pending.client,
                request_id,
                P.ErrorCode.NO_SERVICE,
                f"no {service} worker answered within {self.settings.request_timeout:g} s",
            )
        return self._next_heartbeat

    def _notify_refusals(self, now: float) -> None:
        """Keys the authenticator refused go to the scheduler for the logs table."""
        refused = self.auth.registry.refusals if self.auth is not None else None
        while refused:
            body = P.pack_body({"refused_key": refused.popleft()})
            notice = P.pack_header(P.MsgType.BROKER_NOTICE)
            self._route(P.SCHEDULER, P.BROKER_CLIENT, notice, body, now)

    def _monitor_event(self) -> None:
        event = P.monitor_event(self.monitor, zmq.NOBLOCK)
        if event == zmq.EVENT_ACCEPTED:
            self.accepted += 1
            return
        self.counters.errors["HANDSHAKE_FAILED"] += 1
        if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            self.rare.say("refused keys", "connection refused: its key is not authorised")
            return
        why = "no key or a wrong server key?" if self.auth else "not a ZeroMQ peer of this protocol"
        # a refused peer reconnects every few hundred ms: say it, but not every time
        self.rare.say("failed handshakes", f"connection dropped in its handshake ({why})")

    def stat(self, now: float) -> dict[str, Any]:
        return {
            "broker": {
                "endpoint": self.endpoint,
                "uptime_sec": round(time.time() - self.started, 3),
                "workers": {name: len(svc.workers) for name, svc in self.registry.services.items()},
                "queued": self.registry.queued(),
                "connections_accepted": self.accepted,
                "reply_ms": self.reply_times.as_dict(),
                **self.counters.as_dict(),
            }
        }

    # --- loop ----------------------------------------------------------------------------

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self.monitor, zmq.POLLIN)
        poller.register(self.workers, zmq.POLLIN)
        self.running = True
        log.info("broker listening on %s", self.endpoint)
        deadline = flush_at = began = 0.0
        unhurried = False  # the last pass saw heartbeats only: the next may wait for company
        crowded = False  # ...and came soon after the one before: company is on its way
        alive = watchdog.beat_from_env()
        while self.running:
            due = min(deadline, self._check_at)
            wake = min(due, flush_at, alive.due)
            rest = began + PASS_GAP_SEC - time.monotonic()
            if unhurried and crowded and rest > 0:
                time.sleep(rest)
            timeout_ms = max(0, int((wake - time.monotonic()) * 1000) + 1)
            events = dict(poller.poll(timeout_ms))
            now = time.monotonic()
            crowded, began = now - began < CROWDED_SEC, now
            waited_on = False
            if self.workers in events:
                waited_on = self._drain_workers()
            if self.socket in events:
                waited_on = self._drain() or waited_on
            unhurried = not waited_on
            if self.monitor in events:
                self._drain_monitor()
            now = time.monotonic()
            if now >= due:
                deadline = self.housekeeping(now)
            flush_at = self._flush_due(now)
            alive(now)
        self.close()

    def _drain(self) -> bool:
        """Up to DRAIN_BATCH messages; a batch that fills on the way goes at once. True when
        one of them was more than a heartbeat (someone waits on its answer)."""
        proven = self.auth is not None
        socket = self.socket
        waited_on = False
        for n in range(1, DRAIN_BATCH + 1):
            try:
                frames, second = P.recv_frames(socket)
            except zmq.Again:
                break
            if not waited_on and (len(frames) < 2 or frames[1][2:4] not in _UNHURRIED):
                waited_on = True
            if n % P.BATCH_MAX == 0:  # a full batch goes now: the worker starts on it sooner
                self._flush_due(time.monotonic())
            user = _proven_user(second) if proven else None
            try:
                self.handle(frames, time.monotonic(), user)
            except Exception:  # a bug must not take the broker down; say where it was
                log.exception("error handling a message from %r", frames[0])
        return waited_on

    def _drain_workers(self) -> bool:
        """Heartbeats, replies and READYs from afserver's own workers: a few per pass. True
        when replies came (their clients wait on them)."""
        workers = self.workers
        replied = False
        while True:
            try:
                frames = workers.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return replied
            try:
                msg_type = P.unpack_header(frames[1]).type if len(frames) > 1 else -1
                replied = replied or msg_type == P.MsgType.W_REPLIES
                if msg_type in P.WORKER_TYPES:
                    self._from_worker(frames[0], msg_type, frames, time.monotonic())
                else:
                    self.rare.say("bad worker messages", f"worker {frames[0]!r} sent {msg_type}")
            except P.ProtocolError as exc:
                self.rare.say("bad worker messages", f"worker {frames[0]!r}: {exc.text}")
            except Exception:  # a bug must not take the broker down; say where it was
                log.exception("error handling a message from worker %r", frames[0])

    def _drain_monitor(self) -> None:
        while True:
            try:
                self._monitor_event()
            except zmq.Again:
                return

    def stop(self, *_: Any) -> None:
        self.running = False

    def close(self) -> None:
        if self.auth is not None:
            self.auth.stop()
        self.socket.disable_monitor()
        self.monitor.close(0)
        self.socket.close(0)
        self.workers.close(0)


def _proven_user(frame: zmq.Frame) -> bytes | None:
    """The name the sender's key proved (libzmq's User-Id property of the message)."""
    try:
        return frame.get("User-Id").encode()
    except zmq.ZMQError:  # no proven name: served as nobody, so refused
        return None


def _name(identity: bytes) -> str:
    """A peer's identity for a log line: a garbage sender's may be hundreds of bytes."""
    return repr(identity[:40]) + ("…" if len(identity) > 40 else "")


def _pending_size(pending: Any) -> int:
    return len(pending.body)


def settings_from_config(cfg: Any, link: WorkerLink) -> BrokerSettings:
    return BrokerSettings(
        bind=P.endpoint(cfg["af_server_bind_address"] or "*", cfg["af_serverport"]),
        link=link,
        heartbeat_sec=cfg["af_worker_heartbeat_sec"],
        liveness=cfg["af_worker_liveness"],
        request_timeout=cfg["af_broker_request_timeout"],
        queue_max=cfg["af_broker_queue_max"],
        message_size_max=cfg["af_message_size_max"],
        ipv6=not cfg["af_ipv6_disable"],
        keys_folder=str(curve.keys_folder(cfg)) if curve.mode(cfg) == curve.CURVE else "",
    )


def raise_fd_limit() -> int:
    """Every render is a TCP connection: a farm of 10,000 needs more descriptors than the
    usual soft limit of 1,024. Take the hard limit; returns what we have."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open files limit from %d to %d: %s", soft, hard, exc)
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main(argv: list[str] | None = None) -> None:
    """Run the broker as its own process (afserver starts it)."""
    from config import load_config
    from config.logs import setup_logging, verbosity_from_env

    cfg = load_config()
    setup_logging(verbosity_from_env(), "broker")
    link = workerlink.from_env()
    if link is None:
        log.critical("the broker is started by afserver (%s is not set)", workerlink.ENDPOINT_ENV)
        sys.exit(2)
    files = raise_fd_limit()
    log.info("open files limit %d: room for about %d renders", files, files - 64)
    try:
        broker = Broker(settings_from_config(cfg, link))
    except zmq.ZMQError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        log.critical("port %s is in use: is another afserver running?", cfg["af_serverport"])
        sys.exit(EXIT_PORT_IN_USE)
    signal.signal(signal.SIGTERM, broker.stop)
    signal.signal(signal.SIGINT, broker.stop)
    broker.run()


if __name__ == "__main__":
    main()
