"""Message type -> farm call. Every body is validated here, before the farm sees it."""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from broker import protocol as P
from broker.rarelog import RareLog
from broker.validate import Field, Invalid, Schema, check, one_kind
from workers.base import WorkerConnection
from workers.scheduler import permissions as perms
from workers.scheduler import requests
from workers.scheduler.farm import Farm, NotFound, Refused, Registration
from workers.scheduler.monitors import Monitors
from workers.scheduler.output import OutputStore, truncated_note
from workers.scheduler.states import FINAL_STATUSES
from workers.scheduler.storehealth import StoreHealth

log = logging.getLogger("scheduler")

NAME = Field(str, max_len=255)
_SCALAR_MAP = Field(dict, max_len=256)  # free-form resources: plain values, bounded
_RENDER_MESSAGES = frozenset({P.MsgType.RENDER_UPDATE, P.MsgType.RENDER_BEAT})  # beats and reports
NETIF = Field(
    dict,
    fields={
        "name": Field(str, required=True, max_len=64),
        "mac": Field(str, required=True, max_len=64),
        "addresses": Field(list, max_len=64, items=Field(str, max_len=64)),
        "broadcasts": Field(list, max_len=64, items=Field(str, max_len=64)),
    },
)
TASK_REPORT = Field(
    dict,
    fields={
        "job_id": Field(int, required=True, min=0),
        "block_id": Field(int, required=True, min=0),
        "task_id": Field(int, required=True, min=0),
        "attempt": Field(int, required=True, min=1),
        "status": Field(str, required=True, choices=("running", *sorted(FINAL_STATUSES))),
        "percent": Field(int, min=0, max=100),
        "frame": Field(int),
        "percentframe": Field(int, min=0, max=100),
        "activity": Field(str, max_len=1024),
        "warning": Field(bool),
        "output": Field(bytes, max_len=1 << 20),
        "output_full": Field(bytes, max_len=16 << 20),
        "exit_code": Field(int),
        "explain": Field(str, max_len=1024),
        "time_start": Field(float, min=0),
        "time_done": Field(float, min=0),
    },
)
TASK_REPORTS = Field(list, max_len=1000, items=TASK_REPORT)

REGISTER: Schema = {
    "name": Field(str, required=True, max_len=255),
    "user_name": NAME,
    "os": NAME,
    "engine": Field(str, max_len=64),
    "address": Field(str, max_len=255),
    "host": _SCALAR_MAP,
    "host_resources": _SCALAR_MAP,
    "netifs": Field(list, max_len=64, items=NETIF),
    "time_launch": Field(float, min=0),
    "tasks": TASK_REPORTS,
    # a render may set its own services and capacity (system-job executors do)
    "services": Field(list, max_len=100, items=Field(str, max_len=64)),
    "capacity_host": Field(int, min=-1),
    "events_seen": Field(int, min=0),
    "max_tasks_host": Field(int, min=-1),
}
HELD = Field(list, max_len=10_000, items=Field(list, max_len=4, items=Field(int, min=0)))
UPDATE: Schema = {
    "id": Field(int, required=True, min=1),
    "host_resources": _SCALAR_MAP,
    "tasks": TASK_REPORTS,
    "tasks_held": HELD,  # every run the render holds, running or awaiting its close
    "events_seen": Field(int, min=0),  # the last push ("seq") the render has applied
}
DEREGISTER: Schema = {"id": Field(int, required=True, min=1), "tasks": TASK_REPORTS}
MONITOR: Schema = {"user_name": NAME, "host_name": NAME}

HELD_GRACE_MIN = 5.0  # seconds a started run may be missing from a render's list (start in flight)
HELD_GRACE_LONG = 60.0  # the same for a render that echoes pushes: a push that never arrived

REQUEST_KINDS = ("get", "action", "job", "user")
IDENTITY_KEYS = ("user_name", "host_name")
# "admin": true asks for the admin role; it is granted to admins only (permissions.py)
# idempotency_key: a submission's key of the client's choice (a UUID): sent again, the
# first submission's reply comes back instead of a second job, so a client may retry
REQUEST_EXTRAS = (*IDENTITY_KEYS, "admin", "idempotency_key")
KEY_MAX = 128


def _final_key(render: Any, report: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (render.id, report["job_id"], report["block_id"], report["task_id"], report["attempt"])


def _valid_name(name: str) -> str:
    if not name or name != name.strip() or any(c.isspace() or not c.isprintable() for c in name):
        raise Invalid("name", f"must be a non-empty name without spaces, got {name!r}")
    return name


@lru_cache(maxsize=65_536)
def _id_reply(render_id: int) -> P.Packed:
    """The answer to nearly every heartbeat, packed once per render rather than every second."""
    return P.Packed(P.pack_body({"id": render_id}))


def _answered_already(header: P.Header, reply: Any) -> bool:
    """A beat the broker answered when it came (its request id is 0: broker.BEAT_GATHER_SEC)
    needs no word of ours when all we would say is the render's id; to be told to register
    again, or a refusal, still goes to the render."""
    return (
        header.type == P.MsgType.RENDER_BEAT
        and header.request_id == 0
        and isinstance(reply, P.Packed)
    )


class SchedulerHandler:
    """Routes each message to the farm and answers it; refusals name what is wrong."""

    def __init__(
        self,
        conn: WorkerConnection,
        farm: Farm,
        outputs: OutputStore,
        on_new_job: Callable[[Any], None] = lambda job: None,
        store_check: Callable[[], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
        policy: perms.Policy | None = None,
        health: StoreHealth | None = None,
        on_store_fault: Callable[[OSError, str], bool] = lambda exc, where: False,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.conn = conn
        self.farm = farm
        self.outputs = outputs
        self.on_new_job = on_new_job  # stores the submission before it is acknowledged
        self.store_check = store_check
        self.clock = clock
        self.policy = policy or perms.Policy()
        # a full or unwritable store: what needs a commit is refused (storehealth.py)
        self.health = health or StoreHealth("")
        self.on_store_fault = on_store_fault
        self.config = config  # shown_config of the scheduler's own: secrets masked
        self.requests: Counter[str] = Counter()
        self.rare = RareLog(log, 10.0, logging.INFO)  # a client repeating a bad request
        self._routes: dict[int, Callable[[bytes, Any, float, str | None], Any]] = {
            P.MsgType.RENDER_REGISTER: self.render_register,
            P.MsgType.RENDER_UPDATE: self.render_update,
            P.MsgType.RENDER_BEAT: self.render_update,
            P.MsgType.RENDER_DEREGISTER: self.render_deregister,
            P.MsgType.REQUEST: self.request,
            P.MsgType.MONITOR_REGISTER: self.monitor_register,
            P.MsgType.MONITOR_DEREGISTER: self.monitor_deregister,
        }
        self.monitors = Monitors()
        # Final reports that came with render updates, handled by the loop's tick a batch at a
        # time (handle_finals): a final costs ten heartbeats, and when 10,000 tasks end at once
        # the heartbeats behind them must not wait for all of them.
        self.finals: deque[tuple[Any, dict[str, Any], float]] = deque()
        self.finals_held: set[tuple[int, int, int, int, int]] = set()  # render id, key, attempt

    def handle(self, client: bytes, header: P.Header, body: Any, proven: str | None = None) -> None:
        """One message; ``proven`` is the user name the broker proved by the sender's key
        (None in the trusted mode)."""
        if header.type == P.MsgType.BROKER_NOTICE:
            self.broker_notice(client, body)
            return
        route = self._routes.get(header.type)
        self.requests[header.type_name] += 1
        if header.type not in _RENDER_MESSAGES:  # heartbeats and task reports leave the
            self.farm.ranking_stale = True  # ranking of jobs as it was, but for run counts
        if route is None:
            self.conn.error(
                client,
                header.request_id,
                P.ErrorCode.UNKNOWN_TYPE,
                f"unknown message type {header.type}",
            )
            return
        if self.policy.authenticated and proven is None:
            self.conn.error(
                client, header.request_id, P.ErrorCode.REFUSED, "not authenticated (af_auth)"
            )
            return
        try:
            reply_type, reply = route(client, body, self.clock(), proven)
        except Invalid as exc:
            self.requests["invalid"] += 1
            self.rare.say("invalid requests", f"refused {header.type_name} from {client!r}: {exc}")
            self.conn.error(client, header.request_id, P.ErrorCode.INVALID, str(exc))
        except Refused as exc:
            self.conn.error(client, header.request_id, P.ErrorCode.REFUSED, str(exc))
        except NotFound as exc:
            self.conn.error(client, header.request_id, P.ErrorCode.NOT_FOUND, str(exc))
        else:
            if not _answered_already(header, reply):
                self.conn.reply(client, reply_type, reply, header.request_id)

    def broker_notice(self, client: bytes, body: Any) -> None:
        """What the broker saw that belongs in the logs table (a key it refused). Peers cannot
        send this: the broker refuses the type from them and no peer has its identity."""
        if client != P.BROKER_CLIENT or not isinstance(body, dict):
            return
        key = body.get("refused_key")
        if isinstance(key, str) and len(key) <= 128:
            info = "connection refused: key not authorised (afcmd keys list)"
            self.farm.log_row(self.clock(), f"key {key}", "keys", key, info)

    # --- renders -------------------------------------------------------------------------

    def render_register(
        self, client: bytes, body: Any, now: float, proven: str | None = None
    ) -> tuple[int, Any]:
        data = check(body, REGISTER)
        name = _valid_name(data["name"])
        self.handle_finals()  # a render coming back finds its finals counted, as they came
        refusal = perms.render_registration(proven, name, self.policy.admins)
        if refusal is not None:
            self.farm.log_row(
                now, proven or "?", "renders", name, f"registration refused: {refusal}"
            )
            raise Refused(refusal)
        reg = Registration(
            name=name,
            user_name=data.get("user_name", ""),
            os=data.get("os", ""),
            engine=data.get("engine", ""),
            address=data.get("address", ""),
            host=data.get("host", {}),
            host_resources=data.get("host_resources", {}),
            netifs=data.get("netifs", []),
            time_launch=float(data.get("time_launch", 0.0)),
            services=data.get("services"),
            capacity_host=data.get("capacity_host", -1),
            max_tasks_host=data.get("max_tasks_host", -1),
        )
        render = self.farm.register_render(client, reg, now)
        render.proven = proven or ""
        # A restarted scheduler counts its pushes from 0 while the render remembers the last
        # one it saw: number the next pushes above it, or a fresh start would look seen.
        render.push_seq = max(render.push_seq, data.get("events_seen", 0))
        log.info("render %s (id %d) online from %s", render.name, render.id, render.address or "?")
        where = render.address or "?"
        self.farm.log_row(now, render.name, "renders", render.name, f"online from {where}")
        reply = {"id": render.id, **self.farm.render_config(render)}
        self._task_reports(render, data.get("tasks"), now, reply)
        reported = {(r["job_id"], r["block_id"], r["task_id"]) for r in data.get("tasks") or ()}
        self.farm.release_unheld(render, reported, now)
        self.farm.solve_needed = True
        return P.MsgType.RENDER_EVENTS, reply

    def _render_of(self, client: bytes, render_id: int, proven: str | None) -> Any:
        """The render this connection registered as, under the same key: a peer that took
        over the connection's routing identity with another key is not that render."""
        render = self.farm.render_of(client, render_id)
        if render is None or (proven is not None and render.proven != proven):
            return None
        return render

    def render_update(
        self, client: bytes, body: Any, now: float, proven: str | None = None
    ) -> tuple[int, Any]:
        data = check(body, UPDATE)
        render = self._render_of(client, data["id"], proven)
        if render is None:
            # Unknown to us (we restarted, or it went zombie): it must register again.
            return P.MsgType.RENDER_EVENTS, {"id": -1, "reason": "not registered: register again"}
        self.farm.update_render(render, data.get("host_resources"), now)
        reply: dict[str, Any] = {"id": render.id}
        self._task_reports(
            render, self._put_aside_finals(render, data.get("tasks"), now), now, reply
        )
        if "tasks_held" in data and render.tasks:  # nothing we hold can be missing otherwise
            grace = max(HELD_GRACE_MIN, 3 * self.farm.pools.inherited(render.pool, "heartbeat_sec"))
            seen = data.get("events_seen")
            self.farm.check_held(render, data["tasks_held"], now, grace, seen, HELD_GRACE_LONG)
        return P.MsgType.RENDER_EVENTS, reply if len(reply) > 1 else _id_reply(render.id)

    def _put_aside_finals(
        self, render: Any, reports: list[dict[str, Any]] | None, now: float
    ) -> list[dict[str, Any]] | None:
        """Queue the final reports for handle_finals; return the running ones. A final sent
        again while the first waits here is dropped: it would only be refused later.

        Putting a final aside reorders nothing that matters: the render holds the run (in
        its tasks_held) until the close, which leaves only once the final is committed."""
        if not reports:
            return reports
        running = []
        for report in reports:
            if report["status"] == "running":
                running.append(report)
                continue
            held = _final_key(render, report)
            if held not in self.finals_held:
                self.finals_held.add(held)
                self.finals.append((render, report, now))
        return running

    def handle_finals(self, limit: int | None = None) -> int:
        """The finals put aside, oldest first, at most `limit` of them (all by default), as
        they would have been handled when they came. Returns how many wait still."""
        finals = self.finals
        for _ in range(len(finals) if limit is None else min(limit, len(finals))):
            render, report, now = finals.popleft()
            self.finals_held.discard(_final_key(render, report))
            self._task_reports(render, [report], now, {})
        return len(finals)

    def _task_reports(
        self, render: Any, reports: list[dict[str, Any]] | None, now: float, reply: dict[str, Any]
    ) -> None:
        if not reports:
            return
        result = self.farm.task_reports(render, reports, now)
        for key, attempt, chunk in result.output:
            if (failed := self.outputs.append(key, attempt, chunk)) is not None:
                self._output_truncated(key, failed, now)
        for key, attempt, text in result.full_output:
            if (failed := self.outputs.replace(key, attempt, text)) is not None:
                self._output_truncated(key, failed, now)
        for done in result.finished:
            self.outputs.close((done.job.id, done.block.index, done.task), done.run.attempt)
        if result.close:
            # acknowledged only once the outcome is committed: the loop pushes these after
            self.farm.closes.setdefault(render.id, []).extend(result.close)
        if result.stop:
            reply["tasks_stop"] = result.stop

    def _output_truncated(self, key: tuple[int, int, int], exc: OSError, now: float) -> None:
        """A run's output lost its end: said in the task's log, never silently."""
        found = self.farm.job(key[0])
        if found is not None and 0 <= key[1] < len(found.blocks):
            reason = (exc.strerror or str(exc)).lower()
            found.blocks[key[1]].add_task_log(key[2], now, truncated_note(reason))
        if not self.on_store_fault(exc, "task output"):  # not a full store: said, rarely
            self.rare.say("task output", f"cannot write the output of task {list(key)}: {exc}")

    def render_deregister(
        self, client: bytes, body: Any, now: float, proven: str | None = None
    ) -> tuple[int, Any]:
        data = check(body, DEREGISTER)
        self.handle_finals()
        render = self._render_of(client, data["id"], proven)
        reply: dict[str, Any] = {"ok": True}
        if render is not None:
            self._task_reports(render, data.get("tasks"), now, reply)
            self.farm.deregister_render(render, now)
            log.info("render %s (id %d) deregistered", render.name, render.id)
            self.farm.log_row(now, render.name, "renders", render.name, "offline: deregistered")
        return P.MsgType.REPLY, reply

    # --- monitors ------------------------------------------------------------------------

    def monitor_register(
        self, client: bytes, body: Any, now: float, proven: str | None = None
    ) -> tuple[int, Any]:
        """Watching changes nothing: any caller may; its name is the proven one if any."""
        data = check(body, MONITOR)
        known = client in self.monitors.by_identity
        user = proven or data.get("user_name", "")
        monitor = self.monitors.register(client, user, data.get("host_name", ""), now)
        if not known:
            log.info(
                "monitor %d of %s@%s registered", monitor.id, monitor.user_name, monitor.host_name
            )
        return P.MsgType.REPLY, {"id": monitor.id}

    def monitor_deregister(
        self, client: bytes, body: Any, now: float, proven: str | None = None
    ) -> tuple[int, Any]:
        check(body, MONITOR)
        return P.MsgType.REPLY, {"ok": self.monitors.deregister(client)}

    # --- client requests -----------------------------------------------------------------

    def request(
        self, client: bytes, body: Any, now: float, proven: str | None = None
    ) -> tuple[int, Any]:
        kind = one_kind(body, REQUEST_KINDS, REQUEST_EXTRAS)
        for key in IDENTITY_KEYS:
            if key in body and (not isinstance(body[key], str) or len(body[key]) > 255):
                raise Invalid(key, "expected a name (str of at most 255 characters)")
        if not isinstance(body.get("admin", False), bool):
            raise Invalid("admin", "expected bool")
        key = body.get("idempotency_key", "")
        if not isinstance(key, str) or len(key) > KEY_MAX or not key.isprintable():
            raise Invalid("idempotency_key", f"expected a str of at most {KEY_MAX} characters")
        caller, refusal = perms.identify(
            body.get("user_name", ""),
            body.get("host_name", ""),
            proven,
            body.get("admin", False),
            self.policy.admins,
        )
        self.requests[f"request_{kind}"] += 1
        target = requests.action_target(body["action"]) if kind == "action" else (kind, "")
        if refusal is None:
            refusal = perms.request_kind(caller, kind)
        if refusal is not None:
            self.farm.log_row(now, caller.subject, *target, f"refused: {refusal}")
            raise Refused(refusal)
        if kind in ("job", "action") and (store_refusal := self.health.refusal()) is not None:
            self.requests["refused_store"] += 1  # not in the logs table: it waits for the store
            raise Refused(store_refusal)
        if kind == "job":
            return self.submit(body["job"], caller, now, key)
        if caller.user:
            self.farm.touch_user(caller.user, caller.host, now)
        if kind == "get":
            return P.MsgType.REPLY, requests.get(
                self.farm,
                self.outputs,
                body["get"],
                now,
                dict(self.requests),
                self.store_check,
                self.health.to_json(time.monotonic()),
                self.config,
            )
        if kind == "action":
            self.farm.renders_rescan = True  # the solver looks at every render again
            try:
                reply = requests.action(self.farm, body["action"], caller, now, self.policy)
            except (Invalid, Refused, NotFound) as exc:
                self.farm.log_row(now, caller.subject, *target, f"refused: {exc}")
                raise
            self.farm.log_row(now, caller.subject, *target, reply["info"]["text"])
            return P.MsgType.REPLY, reply
        raise Invalid(kind, "this request kind is not served yet by this server version")

    def submit(
        self, job_body: Any, caller: perms.Caller, now: float, key: str = ""
    ) -> tuple[int, Any]:
        subject = caller.subject
        try:
            job_user = job_body.get("user_name") if isinstance(job_body, dict) else None
            job_user = job_user if isinstance(job_user, str) else ""
            refusal = perms.submission(caller, job_user)
            if refusal is not None:
                raise Refused(refusal)
            first = self.farm.submitted(job_user or caller.user, key) if key else None
            if first is not None:  # a retry: the first reply again, not a second job
                info = f"submission repeated (same idempotency key): id {first.id}"
                self.farm.log_row(now, subject, "jobs", first.name, info)
                reply = {"id": first.id, "serial": first.serial, "name": first.name}
                return P.MsgType.REPLY, reply | {"repeated": True}
            job = self.farm.add_job(job_body, caller.user, caller.host, now, key)
        except (Invalid, Refused) as exc:
            self.farm.log_row(now, subject, "jobs", "", f"submission refused: {exc}")
            raise
        self.on_new_job(job)  # stored, or refused with nothing left of it
        self.farm.log_row(now, subject, "jobs", job.name, f"submitted: id {job.id}")
        log.info(
            "job %d '%s' of %s submitted: %d tasks",
            job.id,
            job.name,
            job.user_name,
            job.tasks_total(),
        )
        return P.MsgType.REPLY, {"id": job.id, "serial": job.serial, "name": job.name}
