"""Workers per service, their liveness, and requests waiting for a worker. No sockets here.

The broker decides with these plain objects; it only does the sending. Time is an argument.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

# Room for what must never be refused while the server is merely busy (registrations and
# task reports): this many times af_broker_queue_max.
RESERVED_FACTOR = 4


class Kind(enum.Enum):
    """How a request may be treated while it waits for a worker."""

    ASKED = "asked"  # a person or a script waits on it: refused when the queue is full
    BEAT = "beat"  # a render's heartbeat with nothing new: replaced by a newer, shed first
    REGISTRATION = "registration"  # replaced by a newer one of the same peer, never shed
    RESERVED = "reserved"  # task reports, deregistrations: never replaced, never shed


class Queued(enum.Enum):
    QUEUED = "queued"
    COALESCED = "coalesced"  # it replaced the same peer's waiting one of its kind
    FULL = "full"


_COALESCING = frozenset({Kind.BEAT, Kind.REGISTRATION})
_SHED_FIRST = frozenset({Kind.ASKED, Kind.BEAT})


@dataclass(slots=True)
class Worker:
    identity: bytes
    service: str
    expiry: float  # monotonic time after which the worker is considered dead
    # (client, request id) of the requests handed to it and not answered yet: if it goes,
    # their clients are told at once (a render's heartbeat is not followed: the next comes)
    inflight: set[tuple[bytes, bytes]] = field(default_factory=set)


@dataclass(slots=True)
class Pending:
    """A request held while its service has no live worker."""

    deadline: float
    client: bytes
    header: bytes
    body: bytes
    user: bytes | None = None  # the proven user name (af_auth)
    kind: Kind = Kind.ASKED


@dataclass(slots=True)
class Service:
    name: str
    workers: dict[bytes, Worker] = field(default_factory=dict)
    queue: deque[Pending] = field(default_factory=deque)
    urgent: bool = False  # the queue holds a request that should not wait for a batch
    flushed: float = float("-inf")  # monotonic time the queue last went to a worker
    # each peer's newest waiting request: a newer beat or registration replaces it in place
    latest: dict[bytes, Pending] = field(default_factory=dict)
    beats: int = 0  # how many of the queue are beats (which nobody waits on)
    _turn: int = 0

    def popleft(self) -> Pending:
        pending = self.queue.popleft()
        if self.latest.get(pending.client) is pending:
            del self.latest[pending.client]
        if pending.kind is Kind.BEAT:
            self.beats -= 1
        return pending

    def pick(self) -> Worker | None:
        """Round robin over live workers (one scheduler in practice; executors may be many)."""
        if not self.workers:
            return None
        if len(self.workers) == 1:  # the scheduler: no list per request
            return next(iter(self.workers.values()))
        identities = list(self.workers)
        self._turn = (self._turn + 1) % len(identities)
        return self.workers[identities[self._turn]]


class Registry:
    """Services, their workers and their queues."""

    def __init__(
        self,
        liveness_sec: float,
        request_timeout: float,
        queue_max: int,
        rest_liveness_sec: float | None = None,
    ) -> None:
        """`liveness_sec`: how soon a worker given requests must be heard from;
        `rest_liveness_sec` (longer, default the same): how long one with nothing to do may
        be silent (it heartbeats slower at rest, workers/base.py)."""
        self.liveness_sec = liveness_sec
        self.rest_liveness_sec = max(liveness_sec, rest_liveness_sec or liveness_sec)
        self.request_timeout = request_timeout
        self.queue_max = queue_max
        self.services: dict[str, Service] = {}
        self.workers: dict[bytes, Worker] = {}

    def service(self, name: str) -> Service:
        svc = self.services.get(name)
        if svc is None:
            svc = self.services[name] = Service(name)
        return svc

    def ready(self, identity: bytes, service: str, now: float) -> Worker:
        """A worker announced itself. A known identity re-announcing replaces its old entry."""
        self.remove(identity)
        worker = Worker(identity, service, now + self.rest_liveness_sec)
        self.workers[identity] = worker
        self.service(service).workers[identity] = worker
        return worker

    def touch(self, identity: bytes, now: float) -> Worker | None:
        worker = self.workers.get(identity)
        if worker is not None:
            worker.expiry = now + self.rest_liveness_sec
        return worker

    def expect(self, worker: Worker, now: float) -> None:
        """The worker was just given requests: it must be heard from within liveness_sec
        (an answer or a heartbeat), whatever its pace at rest was."""
        worker.expiry = min(worker.expiry, now + self.liveness_sec)

    def remove(self, identity: bytes) -> Worker | None:
        worker = self.workers.pop(identity, None)
        if worker is not None:
            self.services[worker.service].workers.pop(identity, None)
        return worker

    def expire_workers(self, now: float) -> list[Worker]:
        dead = [w for w in self.workers.values() if w.expiry < now]
        for worker in dead:
            self.remove(worker.identity)
        return dead

    def enqueue(
        self,
        service: str,
        client: bytes,
        header: bytes,
        body: bytes,
        now: float,
        user: bytes | None = None,
        gather: bool = False,
        kind: Kind = Kind.ASKED,
    ) -> Queued:
        """Queue a request for its service. `gather`: it may wait a moment for others to join
        its batch (flush_at), else the queue goes at once.

        A busy server degrades by what can wait: a beat or a registration replaces the same
        peer's one still waiting, when that is the peer's newest (so nothing is reordered);
        asked requests and beats are refused once af_broker_queue_max wait, registrations and
        task reports only at RESERVED_FACTOR times that (a render that is refused those would
        register again, or resend, and add load)."""
        svc = self.service(service)
        last = svc.latest.get(client)
        if last is not None and last.kind is kind and kind in _COALESCING:
            last.header, last.body, last.user = header, body, user
            return Queued.COALESCED
        waiting = len(svc.queue)
        if waiting >= self.queue_max * (1 if kind in _SHED_FIRST else RESERVED_FACTOR):
            return Queued.FULL
        pending = Pending(now + self.request_timeout, client, header, body, user, kind)
        svc.queue.append(pending)
        svc.latest[client] = pending
        if kind is Kind.BEAT:
            svc.beats += 1
        svc.urgent = svc.urgent or not gather
        return Queued.QUEUED

    def expire_requests(self, now: float) -> list[tuple[str, Pending]]:
        """Requests that waited too long. Queues are in deadline order, so look at the front."""
        expired: list[tuple[str, Pending]] = []
        for svc in self.services.values():
            while svc.queue and svc.queue[0].deadline < now:
                expired.append((svc.name, svc.popleft()))
            svc.urgent = svc.urgent and bool(svc.queue)
        return expired

    def flush_at(
        self,
        service: Service,
        gather: float,
        batch_max: int,
        quiet: float = float("inf"),
        beats_gather: float | None = None,
    ) -> float:
        """When a service's queue should go to its worker: once its oldest request has waited
        `gather` seconds for others to join its batch; at once when a batch is full or a
        request that may not wait is in it (enqueue). A batch per heartbeat would cost the
        worker a wakeup per heartbeat; a person waiting on an answer should not wait more.
        Batching grows with load: a request that comes after `quiet` seconds without a flush
        has nobody to wait for (ten renders' beats are 100 ms apart) and goes at once. A
        queue of beats only (already answered by the broker) waits `beats_gather`."""
        if not service.queue or not service.workers:
            return float("inf")
        if service.urgent or len(service.queue) >= batch_max:
            return 0.0
        arrived = self._oldest_arrived(service)
        if beats_gather is not None and service.beats == len(service.queue):
            return arrived + beats_gather
        if arrived - service.flushed > quiet:
            return 0.0
        return arrived + gather

    def wake_at(self, service: Service, due: float, beats_late: float) -> float:
        """When the loop must wake to send a queue that is due at `due` (flush_at): then,
        except for a queue of beats only, which rides along with a pass that comes anyway
        (the next beat's, at a farm's pace) and wakes the loop itself only once its oldest
        beat is `beats_late` old: one render's beat a second costs the broker no timer."""
        if 0.0 < due < float("inf") and service.beats == len(service.queue):
            return max(due, self._oldest_arrived(service) + beats_late)
        return due

    def _oldest_arrived(self, service: Service) -> float:
        """When the oldest request of a non-empty queue came (its deadline tells)."""
        return service.queue[0].deadline - self.request_timeout

    def queued(self) -> dict[str, int]:
        return {name: len(svc.queue) for name, svc in self.services.items()}
