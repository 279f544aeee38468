"""The original's requests as conversations with our scheduler, and its reply shapes back.

``conversation(request)`` is a generator: it yields each request of ours (a body for
``Client.request``), receives the reply (or has a ``Refusal`` thrown in), and returns the
reply in the original's shape. Some original requests take more than one of ours (an id of
a pool is a path here; ``block_ids: [-1]`` means every block of each job), so a generator
keeps that logic pure: the process that drives it does all the I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from typing import Any

from broker.patterns import compile_pattern
from broker.validate import Invalid
from gateway import shapes
from workers.scheduler.submit import BLOCK, JOB, TASK

log = logging.getLogger("gateway")


class Refusal(Exception):
    """Our server refused a request (or did not answer): its code and text."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


INVALID = 7  # broker.protocol.ErrorCode.INVALID
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
NOT_FOUND = 8  # broker.protocol.ErrorCode.NOT_FOUND
Conversation = Generator[dict[str, Any], Any, dict[str, Any]]
NOT_SERVED = ("monitor", "user", "reload_config", "announce", "save")
_NUMERIC = 1 << 0


Grant = Callable[[str], bool]


def _nobody(_user: str) -> bool:
    return False


def conversation(request: Any, grant: Grant = _nobody) -> Conversation:
    """One request of the original's clients -> the original's reply. ``grant(user)`` says
    whether that user acts with the admin role (the site's choice: gateway.admin)."""
    if not isinstance(request, dict):
        return error(f"a request is a JSON object, got {type(request).__name__}")
    if "job" in request:
        return (yield from submit(request["job"], grant))
    if "get" in request:
        # the Python API's Cmd puts who asks inside the get object, others beside it
        who = {**identity(request, grant), **identity(request["get"], grant)}
        return (yield from get(request["get"], who))
    if "action" in request:
        return (yield from action(request["action"], grant))
    for kind in NOT_SERVED:
        if kind in request:
            return error(f"'{kind}' requests are not served by this server")
    keys = ", ".join(sorted(map(str, request))) or "nothing"
    return error(f"unknown request: expected job, get or action, got {keys}")


def error(text: str) -> dict[str, Any]:
    """The original's error reply: ``{"error": …}`` for clients of 3.x before it became
    ``{"info": {"kind": "error", …}}``; both keys, so either generation reads it."""
    return {"error": text, **info("error", text)}


def message(kind: str, name: str, lines: list[str]) -> dict[str, Any]:
    """The original's list answer (a job's log, its error hosts)."""
    return {"message": {"name": name, "type": kind, "list": lines}}


def info(kind: str, text: str) -> dict[str, Any]:
    return {"info": {"kind": kind, "text": text}}


def identity(obj: Any, grant: Grant = _nobody) -> dict[str, Any]:
    """Who asks: the original carries user_name and host_name inside the request object.
    The original's clients cannot ask for the admin role (its GUI kept its "GOD mode"
    client-side), so whether one acts with it is the site's choice (``grant``), never the
    request's: an `"admin"` key sent along is ignored. The scheduler still grants the role
    only to af_admins."""
    if not isinstance(obj, dict):
        return {}
    out: dict[str, Any] = {}
    for key in ("user_name", "host_name"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            out[key] = value
    if "user_name" in out and grant(out["user_name"]):
        out["admin"] = True
    return out


def user_id(reply: Any, name: str) -> int:
    """The id of the user of that name in our `get users` reply; -1 when none."""
    users = reply.get("users") if isinstance(reply, dict) else None
    for user in users if isinstance(users, list) else []:
        if isinstance(user, dict) and user.get("name") == name and isinstance(user.get("id"), int):
            return int(user["id"])
    return -1


# --- submission ----------------------------------------------------------------------------


def known_keys(obj: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The original ignores keys it does not know (older Python APIs send some); so do we."""
    return {k: v for k, v in obj.items() if k in schema}


def clean_job(job: dict[str, Any]) -> dict[str, Any]:
    """The submission without keys the original would ignore; the legacy ``numeric: true``
    of older Python APIs becomes the numeric flag, which alone decides since then."""
    out = known_keys(job, JOB)
    blocks = job.get("blocks")
    if isinstance(blocks, list):
        out["blocks"] = [_clean_block(b) if isinstance(b, dict) else b for b in blocks]
    return out


def _clean_block(block: dict[str, Any]) -> dict[str, Any]:
    out = known_keys(block, BLOCK)
    flags = out.get("flags", 0)
    if block.get("numeric") is True and isinstance(flags, int) and not isinstance(flags, bool):
        out["flags"] = flags | _NUMERIC
    tasks = block.get("tasks")
    if isinstance(tasks, list):
        out["tasks"] = [known_keys(t, TASK) if isinstance(t, dict) else t for t in tasks]
    return out


def submit(job: Any, grant: Grant = _nobody) -> Conversation:
    if not isinstance(job, dict):
        return {"id": 0, "error": f"job: expected an object, got {type(job).__name__}"}
    try:
        reply = yield {"job": clean_job(job), **identity(job, grant)}
    except Refusal as exc:
        return {"id": 0, "error": exc.text}
    return {"id": reply["id"], "serial": reply["serial"], "name": reply["name"]}


# --- get -----------------------------------------------------------------------------------


def _ints(value: Any, field: str) -> list[int]:
    """A list of ids; Refusal naming the field for anything else, as for a number no id
    can be (ours are 64-bit on the wire: a larger one could not even be sent)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Refusal(INVALID, f"{field}: expected a list of integers, got {_shown(value)}")
    for v in value:
        if not isinstance(v, int) or isinstance(v, bool) or not _INT64_MIN <= v <= _INT64_MAX:
            raise Refusal(INVALID, f"{field}: {_shown(v)} is not an integer of at most 64 bits")
    return value


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {str(value)[:40]}"


def _strs(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str)]


def get(req: Any, who: dict[str, str]) -> Conversation:
    if not isinstance(req, dict):
        return error("get: expected an object")
    kind = req.get("type")
    mode = req.get("mode") if isinstance(req.get("mode"), str) else ""
    try:
        ids = _ints(req.get("ids"), "get.ids")
        if kind == "jobs":
            return (yield from get_jobs(req, mode, ids, who))
        if kind == "renders":
            reply = yield {"get": {"type": "renders", "mode": "full"}, **who}
            renders = [r for r in reply["renders"] if not ids or r["id"] in ids]
            renders = _masked(renders, req.get("mask"), "name")
            jobs = {}
            running = shapes.running_job_ids(renders) if mode != "resources" else []
            if running:  # the page shows each running task's job, block and user
                try:
                    got = yield {"get": {"type": "jobs", "ids": running, "mode": "full"}, **who}
                    jobs = {j["id"]: j for j in got["jobs"]}
                except Refusal:
                    jobs = {}  # a job gone meanwhile: its tasks are shown by ids only
            return {"renders": [shapes.render(r, mode, jobs) for r in renders]}
        if kind == "users":
            reply = yield {"get": {"type": "users"}, **who}
            users = [u for u in reply["users"] if not ids or u["id"] in ids]
            return {"users": [shapes.user(u) for u in _masked(users, req.get("mask"), "name")]}
        if kind in ("pools", "branches"):
            reply = yield {"get": {"type": kind}, **who}
            nodes = [n for n in shapes.numbered(reply[kind]) if not ids or n["id"] in ids]
            return {kind: _masked(nodes, req.get("mask"), "name")}
    except Refusal as exc:
        return error(exc.text)
    except Invalid as exc:
        return error(str(exc))
    return error(f"Invalid get type = '{kind}'")


def _masked(nodes: list[dict[str, Any]], mask: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(mask, str) or not mask:
        return nodes
    pattern = compile_pattern(mask, "mask")
    return [n for n in nodes if pattern.fullmatch(str(n.get(key, "")))]


def get_jobs(req: dict[str, Any], mode: str, ids: list[int], who: dict[str, str]) -> Conversation:
    block_ids = [b for b in _ints(req.get("block_ids"), "get.block_ids") if b >= 0]
    task_ids = [t for t in _ints(req.get("task_ids"), "get.task_ids") if t >= 0]
    if mode == "output" or (len(ids) == 1 and block_ids and task_ids):
        if len(ids) != 1 or len(block_ids) != 1 or len(task_ids) != 1:
            return error("a task needs one job id, one block id and one task id")
        number = req.get("number", 0)
        number = number if isinstance(number, int) and number > 0 else 0
        return (yield from get_task(ids[0], block_ids[0], task_ids[0], mode, number, who))
    if len(ids) == 1 and block_ids:
        modes = req.get("mode")
        modes = modes if isinstance(modes, list) else [mode or "progress"] * len(block_ids)
        return (yield from get_blocks(ids[0], block_ids, modes, who))
    if len(ids) == 1 and mode in ("log", "error_hosts"):
        reply = yield {"get": {"type": "jobs", "ids": ids, "mode": "full"}, **who}
        found = reply["jobs"][0]
        if mode == "log":
            return message("log", found["name"], found.get("log", []))
        hosts = [
            f"{host}: {count} error(s) in block '{block['name']}'"
            for block in found.get("blocks", [])
            for host, count in block.get("error_hosts", {}).items()
        ]
        return message("error_hosts", found["name"], hosts)
    if len(ids) == 1 and mode == "thumbnail":
        return error("job thumbnails are not served by this server")
    if len(ids) == 1 and mode == "progress":
        return (yield from get_progress(ids[0], who))
    ours: dict[str, Any] = {"type": "jobs", "mode": "full"}
    if mode == "full":
        ours["with_tasks"] = True  # the original writes a list block's tasks in mode full
    serials = _ints(req.get("serials"), "get.serials")
    if ids or serials:
        ours["ids"] = sorted(set(ids) | set(serials))  # a job's serial is its id here
    if isinstance(req.get("mask"), str) and req["mask"]:
        ours["mask"] = req["mask"]
    users = _strs(req.get("users"))
    uids = _ints(req.get("uids"), "get.uids")
    if uids:
        reply = yield {"get": {"type": "users"}, **who}
        users += [u["name"] for u in reply["users"] if u["id"] in uids]
    if users or uids:
        if not users:
            return {"jobs": []}
        ours["users"] = users
    try:
        reply = yield {"get": ours, **who}
    except Refusal as exc:
        if exc.code != NOT_FOUND or "ids" not in ours:
            raise
        # the original lists the jobs that exist and leaves the others out
        wanted = set(ours.pop("ids"))
        reply = yield {"get": ours, **who}
        reply["jobs"] = [j for j in reply["jobs"] if j["id"] in wanted]
    block_mode = "full" if mode == "full" else "list"
    return {"jobs": [shapes.job(j, block_mode) for j in reply["jobs"]]}


def get_blocks(
    job_id: int, block_ids: list[int], modes: list[Any], who: dict[str, str]
) -> Conversation:
    if len(modes) != len(block_ids):
        return error(f"{len(block_ids)} block ids need as many modes, got {len(modes)}")
    for mode in modes:
        if mode not in shapes.BLOCK_MODES:
            return error(f"block data mode must be one of {', '.join(shapes.BLOCK_MODES)}")
    ours = {"type": "jobs", "ids": [job_id], "mode": "full"}
    if "full" in modes:
        ours["with_tasks"] = True  # the original writes a list block's tasks in mode full
    reply = yield {"get": ours, **who}
    blocks = reply["jobs"][0]["blocks"]
    for b in block_ids:
        if b >= len(blocks):
            return error(f"job {job_id} has no block {b} (it has {len(blocks)})")
    return {
        "blocks": [
            shapes.block(blocks[b], b, job_id, mode)
            for b, mode in zip(block_ids, modes, strict=True)
        ]
    }


def get_task(
    job_id: int, block_id: int, task_id: int, mode: str, number: int, who: dict[str, str]
) -> Conversation:
    """The page's task window (wndtask.js): one task's info (Executable), output, log or
    error hosts, each answered ``{"task": MCTask}`` as the original's server does."""
    ours_mode = {"output": "output", "log": "log", "info": "info", "error_hosts": "info"}
    ours: dict[str, Any] = {
        "type": "tasks",
        "job_id": job_id,
        "block_ids": [block_id],
        "task_ids": [task_id],
        "mode": ours_mode.get(mode, "list"),
    }
    if number:
        ours["attempt"] = number
    try:
        reply = yield {"get": ours, **who}
    except Refusal as exc:
        if mode != "output":
            raise
        # the original answers a task output it cannot give with the reason as the output
        task = {"block_id": block_id, "task_id": task_id}
        return shapes.task(job_id, "", task, "TOutput", f"ERROR: {exc.text}", number)
    task = reply["tasks"][0]
    if mode == "output":
        return shapes.task(
            job_id, reply["name"], task, "TOutput", task.get("output", ""), task.get("attempt", 0)
        )
    if mode == "log":
        return shapes.task(job_id, reply["name"], task, "TLog", "\n".join(task["log"]))
    if mode == "info":
        out = shapes.task(job_id, reply["name"], task, "TExec", "")
        out["task"]["exec"] = shapes.task_exec(job_id, reply["name"], task)
        return out
    if mode == "error_hosts":
        lines = shapes.task_error_hosts(task_id, task.get("error_hosts") or {})
        got = yield {"get": {"type": "jobs", "ids": [job_id], "mode": "full"}, **who}
        blocks = got["jobs"][0].get("blocks", []) if got.get("jobs") else []
        if 0 <= block_id < len(blocks):
            lines += shapes.block_error_hosts(blocks[block_id])
        return shapes.task(job_id, reply["name"], task, "TErrorHosts", "\n".join(lines))
    if mode in ("", "progress"):
        return shapes.task(job_id, reply["name"], task, "TNULL", "")
    return error(f"task mode '{mode}' is not served; one of info, log, output, error_hosts")


def get_progress(job_id: int, who: dict[str, str]) -> Conversation:
    """The original's job progress: every task's progress, block by block."""
    reply = yield {"get": {"type": "tasks", "job_id": job_id}, **who}
    blocks: list[list[dict[str, Any]]] = []
    for task in reply["tasks"]:
        while len(blocks) <= task["block_id"]:
            blocks.append([])
        blocks[task["block_id"]].append(shapes.task_progress(task))
    return {"job_progress": {"id": job_id, "progress": blocks}}


# --- action --------------------------------------------------------------------------------

_ACTION_KINDS = ("jobs", "renders", "users", "pools")


def action(req: Any, grant: Grant = _nobody) -> Conversation:
    if not isinstance(req, dict):
        return info("error", "action: expected an object")
    who = identity(req, grant)
    if "user_name" not in who:
        return info("error", "action: user_name is required (it goes to the logs)")
    kind = req.get("type")
    if kind not in _ACTION_KINDS:
        return info(
            "error", f"actions on '{kind}' are not served; one of {', '.join(_ACTION_KINDS)}"
        )
    refusal = not_served_action(req)
    if refusal is not None:
        return info("error", refusal)
    ours: dict[str, Any] = {"type": kind}
    if "params" in req:
        ours["params"] = req["params"]
    if "operation" in req:
        ours["operation"] = operation(req["operation"])
    try:
        if kind in ("users", "pools"):
            names = yield from _node_names(kind, req, who)
            if not names:
                return info("error", f"no {kind[:-1]} matches")
            ours["names"] = names
            return _answer((yield {"action": ours, **who}))
        if "ids" in req:
            ours["ids"] = req["ids"]
        if "mask" in req:
            ours["mask"] = req["mask"]
        if kind == "renders":
            return _answer((yield {"action": ours, **who}))
        return (yield from job_action(req, ours, who))
    except Refusal as exc:
        return info("error", exc.text)
    except Invalid as exc:
        return info("error", str(exc))


# The page's job Move menu (jobs.js moveJobs: an action on its user with the jobs' ids in
# "jids"): the original keeps an order of each user's jobs; ours run by priority, then by
# submission time, so there is no order to move a job in.
MOVE_OPERATIONS = ("move_jobs_top", "move_jobs_up", "move_jobs_down", "move_jobs_bottom")


def not_served_action(req: dict[str, Any]) -> str | None:
    """Why an action of the original's is not served here, or None when it is. Refused
    whole, so that nothing else is done in its place."""
    op = req.get("operation")
    kind = op.get("type") if isinstance(op, dict) else None
    if kind in MOVE_OPERATIONS:
        return (
            f"'{kind}' is not served by this server: it keeps no order of a user's jobs "
            "(they run by priority, then submission time); change a job's priority instead"
        )
    blocks = req.get("block_ids") is not None or req.get("block_mask") is not None
    if req.get("type") == "jobs" and "params" in req and blocks:
        names = (
            ", ".join(sorted(map(str, req["params"])))[:200]
            if isinstance(req["params"], dict)
            else "?"
        )
        return (
            f"block parameters ({names}) are not served by this server: its blocks keep "
            "the parameters they were submitted with (job parameters are set without "
            "block_ids)"
        )
    return None


OPERATION_KEYS = ("type", "task_ids", "mode", "name", "count", "blocks", "tasks")


def operation(op: Any) -> Any:
    """The operation without keys the original ignores (its afcmd.py sends `mask`; its JSON
    files comment a key out as `-key`), and appended work cleaned as a submission is."""
    if not isinstance(op, dict):
        return op
    ignored = sorted(str(k) for k in op if k not in OPERATION_KEYS)
    if ignored:
        log.debug("operation %s: ignored keys %s", op.get("type"), ", ".join(ignored))
    out = {k: v for k, v in op.items() if k in OPERATION_KEYS}
    if isinstance(out.get("blocks"), list):
        out["blocks"] = [_clean_block(b) if isinstance(b, dict) else b for b in out["blocks"]]
    if isinstance(out.get("tasks"), list):
        out["tasks"] = [known_keys(t, TASK) if isinstance(t, dict) else t for t in out["tasks"]]
    return out


def _answer(reply: Any) -> dict[str, Any]:
    if isinstance(reply, dict) and "info" in reply:
        return {"info": reply["info"]}
    return {"object": reply}


def _node_names(kind: str, req: dict[str, Any], who: dict[str, str]) -> Any:
    """Users and pools are named by their ids or a mask in the original; ours by name/path."""
    reply = yield {"get": {"type": kind}, **who}
    nodes = reply[kind] if kind == "users" else shapes.numbered(reply[kind])
    ids = _ints(req.get("ids"), f"action.ids of {kind}")
    chosen = [n for n in nodes if n["id"] in ids] if "ids" in req else []
    if isinstance(req.get("mask"), str):
        chosen += _masked(nodes, req["mask"], "name")
    return sorted({n["name"] for n in chosen})


def job_action(req: dict[str, Any], ours: dict[str, Any], who: dict[str, str]) -> Conversation:
    """Jobs, and their blocks and tasks with ``block_ids`` (-1: all) or ``block_mask``."""
    block_ids = req.get("block_ids")
    mask = req.get("block_mask")
    every = isinstance(block_ids, list) and -1 in block_ids
    if not every and not isinstance(mask, str):
        if block_ids is not None:
            ours["block_ids"] = block_ids
        return _answer((yield {"action": ours, **who}))
    pattern = compile_pattern(mask, "block_mask") if isinstance(mask, str) else None
    selection = {k: ours[k] for k in ("ids", "mask") if k in ours}
    if not selection:
        return info("error", "action: name the jobs: ids or mask")
    reply = yield {"get": {"type": "jobs", "mode": "full", **selection}, **who}
    texts = []
    for found in reply["jobs"]:
        blocks = [
            i
            for i, b in enumerate(found.get("blocks", []))
            if pattern is None or pattern.fullmatch(b["name"])
        ]
        if not blocks:
            continue
        one = {**ours, "ids": [found["id"]], "block_ids": blocks}
        one.pop("mask", None)
        texts.append(_answer((yield {"action": one, **who})).get("info", {}).get("text", ""))
    if not texts:
        return info("error", "no job or block matches")
    return info("log", "; ".join(texts))


def refused_action(request: Any, reply: dict[str, Any]) -> str | None:
    """An action's refusal, told in one line naming who, from where and what, for the
    server's log: the original's af.py discards the replies of its render actions, so
    without it a refusal is silent. None for anything but a refused action."""
    if not isinstance(request, dict) or not isinstance(request.get("action"), dict):
        return None
    shown = reply.get("info")
    if not isinstance(shown, dict) or shown.get("kind") != "error":
        return None
    req = request["action"]
    who = identity(req)
    op = req.get("operation")
    what = op.get("type") if isinstance(op, dict) else None
    if what is None and isinstance(req.get("params"), dict):
        what = "params " + ",".join(sorted(map(str, req["params"])))[:80]
    target = ", ".join(f"{k} {req[k]!r}"[:100] for k in ("ids", "mask") if k in req)
    return (
        f"user '{who.get('user_name', '?')}' on host '{who.get('host_name', '?')}', "
        f"{str(req.get('type'))[:20]} {str(what)[:60]} ({target or 'nothing named'}): "
        f"{str(shown.get('text'))[:300]}"
    )
