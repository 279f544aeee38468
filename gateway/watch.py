"""The original's web page as a monitor: it registers, then polls for what changed.

The page sends ``{"monitor": {user_name, host_name, engine}}`` and gets ``{"monitor":
{"id", "uid", …}}``: ``uid`` is the id of our user of that name, as the original's server
sets it (monitoraf.cpp), or -1 when there is none; with a uid > 0 the page acts as that
user (lists their jobs, shows Move and DELDONE), else it watches everyone's. Then every
cycle ``{"get": {"type": "monitors", "ids": [id], "mode": "events"}}`` and gets
``{"events": {"jobs_change": [ids], "renders_del": [ids], "tasks_progress": […], …}}``
(only the kinds with something), after which it asks for the changed nodes by id. An id
the gateway does not know (it restarted, or the page was away too long) is answered
``{"monitor": {"id": 0}}``, on which the page registers again.

The gateway itself is one monitor of our scheduler while any page is registered here; each
push of what changed is folded into every page's pending events (``fold``), which a poll
takes and clears. Pages that stop polling are dropped after ``TIMEOUT_SEC``; what a page
has pending is bounded, past which it is told to reload (a full ``jobs_change``-style list
is no cheaper than that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway import shapes

TIMEOUT_SEC = 30.0  # a page that has not polled for this long is dropped
PAGES_MAX = 256  # pages registered at once; more are told id 0 (they retry)
PENDING_MAX = 20_000  # ids and task changes pending for one page; past that, it reloads
KINDS = ("jobs", "renders", "users")


@dataclass(slots=True)
class Page:
    id: int
    user_name: str
    host_name: str
    engine: str
    address: str
    time_register: float
    time_activity: float
    uid: int = -1  # our user of that name, -1 for none (the original's monitor uid)
    pending: dict[str, list[Any]] = field(default_factory=dict)
    size: int = 0

    def to_json(self) -> dict[str, Any]:
        """The original's monitor object (the parts its page reads: id and uid)."""
        return {
            "id": self.id,
            "uid": self.uid,
            "name": f"{self.user_name}@{self.host_name}:{self.id}",
            "user_name": self.user_name,
            "host_name": self.host_name,
            "engine": self.engine,
            "address": {"ip": self.address},
            "time_register": int(self.time_register),
            "time_activity": int(self.time_activity),
        }


def _text(value: Any, limit: int = 200) -> str:
    return value[:limit] if isinstance(value, str) else ""


@dataclass(slots=True)
class Pages:
    by_id: dict[int, Page] = field(default_factory=dict)
    next_id: int = 1

    def register(self, request: Any, address: str, now: float, uid: int = -1) -> dict[str, Any]:
        """A page's registration, and the original's reply to it; ``uid`` is the id of our
        user the page names (-1: none)."""
        self.expire(now)
        obj = request if isinstance(request, dict) else {}
        if len(self.by_id) >= PAGES_MAX:
            return {"monitor": {"id": 0}}
        page = Page(
            self.next_id,
            _text(obj.get("user_name")),
            _text(obj.get("host_name")),
            _text(obj.get("engine")),
            address,
            now,
            now,
            uid,
        )
        self.next_id += 1
        self.by_id[page.id] = page
        return {"monitor": page.to_json()}

    def events(self, page_id: int, now: float) -> dict[str, Any]:
        """A poll: what changed since the last one, or id 0 for a page not known here."""
        page = self.by_id.get(page_id)
        if page is None:
            return {"monitor": {"id": 0}}
        page.time_activity = now
        pending, page.pending, page.size = page.pending, {}, 0
        deleted = {kind: set(pending.get(f"{kind}_del", [])) for kind in KINDS}
        for kind in KINDS:  # a node deleted is no longer changed (as the original prepares)
            if f"{kind}_change" in pending and deleted[kind]:
                kept = [i for i in pending[f"{kind}_change"] if i not in deleted[kind]]
                pending[f"{kind}_change"] = kept
        if pending.get("block_ids"):
            pending["block_ids"] = block_ids(pending["block_ids"])  # type: ignore[assignment]
        return {"events": {k: v for k, v in pending.items() if v}}

    def expire(self, now: float) -> list[int]:
        gone = [i for i, p in self.by_id.items() if now - p.time_activity > TIMEOUT_SEC]
        for page_id in gone:
            del self.by_id[page_id]
        return gone

    def fold(self, push: Any) -> None:
        """One push of our scheduler into every page's pending events."""
        if not self.by_id or not isinstance(push, dict):
            return
        events = events_of(push)
        if not events:
            return
        for page in self.by_id.values():
            _add(page, events)


def _add(page: Page, events: dict[str, list[Any]]) -> None:
    for key, values in events.items():
        listed = page.pending.setdefault(key, [])
        if key == "tasks_progress":
            listed.extend(values)
            page.size += sum(len(v["tasks"]) for v in values)
        else:
            seen = set(listed)
            fresh = [v for v in values if v not in seen]
            listed.extend(fresh)
            page.size += len(fresh)
    if page.size > PENDING_MAX:
        # too much to tell piece by piece: the jobs' and renders' lists are asked again
        # whole, and task progress is dropped for the jobs' (the page asks a job's tasks
        # when it opens them)
        page.pending.pop("tasks_progress", None)
        page.size = sum(len(v) for v in page.pending.values())


def _ids(nodes: Any, key: str = "id") -> list[int]:
    if not isinstance(nodes, list):
        return []
    return [n[key] for n in nodes if isinstance(n, dict) and isinstance(n.get(key), int)]


def _plain_ids(values: Any) -> list[int]:
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def events_of(push: dict[str, Any]) -> dict[str, list[Any]]:
    """Our scheduler's push (workers.scheduler.monitors.changes) as the original's events."""
    out: dict[str, list[Any]] = {
        "jobs_change": _ids(push.get("jobs")) + _plain_ids(push.get("tasks_reload")),
        "jobs_del": _plain_ids(push.get("jobs_deleted")),
        "renders_change": _ids(push.get("renders")),
        "renders_del": _plain_ids(push.get("renders_deleted")),
        "users_change": _ids(push.get("users")),
    }
    progress = []
    for entry in push.get("tasks") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("job_id"), int):
            continue
        tasks = [t for t in entry.get("tasks") or [] if isinstance(t, dict)]
        if tasks:
            progress.append(
                {
                    "job_id": entry["job_id"],
                    "blocks": [t.get("block_id", 0) for t in tasks],
                    "tasks": [t.get("task_id", 0) for t in tasks],
                    "progress": [shapes.task_progress(t) for t in tasks],
                }
            )
    if progress:
        out["tasks_progress"] = progress
        # the blocks whose tasks changed: the tasks view asks their progress again
        out["block_ids"] = sorted(
            {(p["job_id"], b) for p in progress for b in p["blocks"] if isinstance(b, int)}
        )
    return {k: v for k, v in out.items() if v}


def block_ids(pairs: list[tuple[int, int]]) -> dict[str, list[Any]]:
    """(job, block) pairs as the original writes them: three parallel lists."""
    return {
        "job_id": [j for j, _ in pairs],
        "block_num": [b for _, b in pairs],
        "mode": ["progress"] * len(pairs),
    }
