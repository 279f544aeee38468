"""Our replies in the original's shapes: jobs, blocks, task outputs, renders, users, pools.

Field names and state strings are the original's (``libafanasy`` ``jsonWrite``): a state is
written twice, as the bit set ``st`` and as the short names in ``state``; block progress
counters are written only when not zero, as the original does. Pure functions over the
dicts our scheduler answers with.
"""

from __future__ import annotations

import time
from typing import Any

from workers.scheduler.renders import BITS as _RENDER_BITS
from workers.scheduler.states import BITS as _STATE_BITS

# Keys the original writes for a job beside its live values, taken from the submission.
_JOB_PARAMS = (
    "annotation",
    "custom_data",
    "description",
    "command_pre",
    "command_post",
    "project",
    "department",
    "time_life",
    "folders",
    "depend_mask",
    "depend_mask_global",
    "need_os",
    "need_properties",
    "hosts_mask_exclude",
    "ppa",
    "maintenance",
    "ignorenimby",
    "ignorepaused",
    "max_tasks_per_second",
    "need_power",
    "need_memory",
    "need_hdd",
    "pools",
    "solve_method",
    "solve_need",
)
# Block keys per data mode, as the original's BlockData::jsonWrite falls through its cases.
_BLOCK_PROPERTIES = (
    "command",
    "tasks_name",
    "parser",
    "working_directory",
    "files",
    "custom_data",
    "environment",
)
_BLOCK_LIST = {  # always written; the defaults of a submission that left them out
    "name": "",
    "service": "generic",
    "capacity": 1000,
    "flags": 0,
    "tasks_num": 0,
    "frame_first": 0,
    "frame_last": 0,
    "frames_per_task": 1,
    "frames_inc": 1,
}
_BLOCK_LIST_OPTIONAL = {  # written when not at the default shown
    "sequential": 1,
    "capacity_coeff_min": 0,
    "capacity_coeff_max": 0,
    "max_running_tasks": -1,
    "max_running_tasks_per_host": -1,
    "need_memory": -1,
    "need_power": -1,
    "need_hdd": -1,
    "errors_retries": -1,
    "errors_avoid_host": -1,
    "errors_task_same_host": -1,
    "errors_forgive_time": -1,
    "task_progress_change_timeout": -1,
    "task_max_run_time": 0,
    "task_min_run_time": 0,
    "depend_mask": "",
    "tasks_depend_mask": "",
    "hosts_mask": "",
    "hosts_mask_exclude": "",
    "need_properties": "",
}
_PROGRESS_COUNTERS = (
    "p_percentage",
    "p_tasks_ready",
    "p_tasks_done",
    "p_tasks_error",
    "p_tasks_skipped",
    "p_tasks_warning",
)
BLOCK_MODES = ("progress", "properties", "full")


def state_bits(names: str | list[str], bits: dict[str, int] | None = None) -> int:
    """Short state names ("RDY RUN" or a list) -> the original's state bit set."""
    table = _STATE_BITS if bits is None else bits
    words = names.split() if isinstance(names, str) else names
    value = 0
    for word in words:
        value |= table.get(word, 0)
    return value


def _state(names: str) -> dict[str, Any]:
    names = "" if names == "-" else names
    return {"st": state_bits(names), "state": names}


def job(data: dict[str, Any], block_mode: str = "list") -> dict[str, Any]:
    """One job of our `get jobs` (mode full) as the original's job object with its blocks:
    in the jobs list's data mode, or "full" for the original's `mode: full` (its TJob:
    blocks with their properties and a list block's tasks, from which the page's tasks view
    names the tasks)."""
    params = data.get("params", {})
    out: dict[str, Any] = {
        "name": data["name"],
        "id": data["id"],
        "priority": data.get("priority", 99),
        "serial": data.get("serial", data["id"]),
        "user_name": data.get("user_name", ""),
        "host_name": data.get("host_name", ""),
        **_state(data.get("state", "")),
        "branch": data.get("branch", "/"),
        "time_creation": int(data.get("time_creation", 0)),
        "running_tasks_num": data.get("tasks_running", 0),
    }
    for key in _JOB_PARAMS:
        value = params.get(key)
        if value not in (None, "", -1, {}, False):
            out[key] = value
    for key in ("annotation", "custom_data", "hosts_mask"):
        if data.get(key):
            out[key] = data[key]
    for key in ("max_running_tasks", "max_running_tasks_per_host"):
        if data.get(key, -1) != -1:
            out[key] = data[key]
    for key in ("time_wait", "time_started", "time_done"):
        if data.get(key):
            out[key] = int(data[key])
    if "state" in out and "OFF" in out["state"].split():
        out["offline"] = True
    blocks = data.get("blocks")
    if blocks is not None:
        out["blocks"] = [
            block(b, i, data["id"], block_mode) for i, b in enumerate(blocks) if isinstance(b, dict)
        ]
    return out


def block(data: dict[str, Any], index: int, job_id: int, mode: str) -> dict[str, Any]:
    """One block of our job (mode full) in a data mode: progress, properties, full or list."""
    out: dict[str, Any] = {}
    if mode == "full" and isinstance(data.get("tasks"), list) and not data.get("flags", 0) & 1:
        out["tasks"] = [_task_data(t) for t in data["tasks"] if isinstance(t, dict)]
    if mode in ("full", "properties"):
        out["command"] = data.get("command", "")  # the original writes these two always
        out["tasks_name"] = data.get("tasks_name", "")
        for key in _BLOCK_PROPERTIES:
            if data.get(key) not in (None, "", [], {}):
                out[key] = data[key]
        for ours, theirs in (("command_pre", "cmd_pre"), ("command_post", "cmd_post")):
            if data.get(ours):
                out[theirs] = data[ours]
    if mode != "progress":
        for key, default in _BLOCK_LIST.items():
            out[key] = data.get(key, default)
        for key, default in _BLOCK_LIST_OPTIONAL.items():
            if data.get(key, default) != default:
                out[key] = data[key]
    out["block_num"] = index
    out.update(_state(data.get("state", "")))
    out["job_id"] = job_id
    if data.get("p_tasks_running"):
        out["running_tasks_counter"] = data["p_tasks_running"]
    for key in _PROGRESS_COUNTERS:
        if data.get(key):
            out[key] = data[key]
    if data.get("error_hosts"):
        out["p_error_hosts"] = len(data["error_hosts"])
    return out


def _task_data(task: dict[str, Any]) -> dict[str, Any]:
    """A list block's task as the original writes it: name, command, files when any."""
    out = {"name": task.get("name", ""), "command": task.get("command", "")}
    if task.get("files"):
        out["files"] = task["files"]
    return out


def task_progress(task: dict[str, Any]) -> dict[str, Any]:
    """A task's progress with the original's short keys (SPEC B §1.5)."""
    out: dict[str, Any] = {
        **_state(task.get("state", "")),
        "str": task.get("starts", 0),
        "err": task.get("errors", 0),
    }
    for ours, theirs in (("time_start", "tst"), ("time_done", "tdn")):
        if task.get(ours):
            out[theirs] = int(task[ours])
    for ours, theirs in (("host", "hst"), ("percent", "per"), ("frame", "frm")):
        if task.get(ours):
            out[theirs] = task[ours]
    if task.get("activity"):
        out["act"] = task["activity"]
    return out


def task(
    job_id: int, job_name: str, task: dict[str, Any], kind: str, data: str, number: int = 0
) -> dict[str, Any]:
    """The original's ``{"task": MCTask}`` reply (MCTask::generateMessage; its page's task
    window reads ``task``: type, pos, progress, names, data, exec): one task's info,
    output, log or error hosts. The older ``task_output`` key went with 2016's MCTaskOutput."""
    return {
        "task": {
            "type": kind,
            "render_id": 0,
            "job_name": job_name,
            "block_name": task.get("block_name", ""),
            "task_name": task.get("name", ""),
            "service": task.get("service", ""),
            "parser": task.get("parser", ""),
            "pos": {
                "job": job_id,
                "block": task.get("block_id", 0),
                "task": task.get("task_id", 0),
                "number": number,
            },
            "progress": task_progress(task),
            "data": data,
        }
    }


TIME_FORMAT = "%a %d %b %H:%M.%S"  # the original's af::time2str (AFGENERAL::TIME_FORMAT)


def task_error_hosts(task_id: int, hosts: dict[str, Any]) -> list[str]:
    """A task's error hosts as the original lists them (Task::getErrorHostsList): a title,
    then `host: count at time`; nothing when it has none (the page says so itself)."""
    lines = []
    for host, entry in hosts.items():
        count, last = (entry if isinstance(entry, list) and len(entry) == 2 else [entry, 0])[:2]
        when = time.strftime(TIME_FORMAT, time.localtime(last)) if last else "?"
        lines.append(f"{host}: {count} at {when}")
    return [f"Task[{task_id}] error hosts: ", *lines] if lines else []


def block_error_hosts(block: dict[str, Any]) -> list[str]:
    """A block's error hosts as the original titles them (Block::v_getErrorHostsList); ours
    keep a count per host (`get jobs` mode full), so `host: count`."""
    hosts = block.get("error_hosts") or {}
    if not isinstance(hosts, dict) or not hosts:
        return []
    title = f"Block['{block.get('name', '')}'] error hosts:"
    return [title, *(f"{host}: {count}" for host, count in hosts.items())]


def task_exec(job_id: int, job_name: str, task: dict[str, Any]) -> dict[str, Any]:
    """What a render is given to run a task (the original's TaskExec), from our `info` mode."""
    first, last = (task.get("frames") or [0, 0])[:2]
    return {
        "name": task.get("name", ""),
        "job_name": job_name,
        "block_name": task.get("block_name", ""),
        "job_id": job_id,
        "block_id": task.get("block_id", 0),
        "task_id": task.get("task_id", 0),
        "service": task.get("service", ""),
        "parser": task.get("parser", ""),
        "command": task.get("command", ""),
        "working_directory": task.get("working_directory", ""),
        "capacity": task.get("capacity", 0),
        "frame_start": first,
        "frame_finish": last,
        "files": task.get("files", []),
        "environment": task.get("environment", {}),
    }


def running_job_ids(renders: list[dict[str, Any]]) -> list[int]:
    """The jobs of the tasks running on these renders (ours list them as [job, block,
    task, attempt])."""
    ids = {
        t[0]
        for r in renders
        for t in r.get("tasks") or []
        if isinstance(t, list) and t and isinstance(t[0], int)
    }
    return sorted(ids)


def render_task(task: Any, jobs: dict[int, dict[str, Any]], started: int) -> Any:
    """A running task as the original's render lists it (its farm view shows job, block,
    task and user names, capacity and running time). Ours keep no start time per task on
    the render: the render's last task finish stands for it (its job's start before any)."""
    if not isinstance(task, list) or len(task) < 3:
        return task
    job_id, block_num, task_num = task[0], task[1], task[2]
    out: dict[str, Any] = {
        "job_id": job_id,
        "block_num": block_num,
        "task_num": task_num,
        "number": task[3] if len(task) > 3 else 0,
        "time_start": started,
    }
    found = jobs.get(job_id)
    if found is not None:
        if not started:  # the render's first task: its job's start is the nearest time
            out["time_start"] = int(found.get("time_started", 0) or 0)
        out["job_name"] = found.get("name", "")
        out["user_name"] = found.get("user_name", "")
        blocks = found.get("blocks") or []
        if isinstance(block_num, int) and 0 <= block_num < len(blocks):
            block = blocks[block_num]
            out["block_name"] = block.get("name", "")
            out["service"] = block.get("service", "")
            out["capacity"] = block.get("capacity", 0)
            out["name"] = f"{block.get('name', '')}.{task_num}"
    return out


def render(
    data: dict[str, Any], mode: str = "list", jobs: dict[int, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A render with the original's ``st``/``state``; resources only when asked for; its
    running tasks as the original's task objects."""
    out = {k: v for k, v in data.items() if k not in ("flags", "state", "online", "host_resources")}
    if isinstance(out.get("tasks"), list):
        started = int(data.get("busy_time", 0) or 0)
        out["tasks"] = [render_task(t, jobs or {}, started) for t in out["tasks"]]
    names = data.get("state", [])
    out["st"] = data.get("flags", state_bits(names, _RENDER_BITS))
    out["state"] = " ".join(names) if isinstance(names, list) else str(names)
    if mode in ("full", "resources") and "host_resources" in data:
        out["host_resources"] = data["host_resources"]
    if mode == "resources":
        return resources(data)
    return out


def resources(data: dict[str, Any]) -> dict[str, Any]:
    """The original's resources reply: no name, st or state (its GUI takes a render with a
    name for a full update), the host's name, and times and resources when online."""
    out: dict[str, Any] = {"id": data["id"], "host_name": data.get("name", "")}
    if data.get("online"):
        out["idle_time"] = data.get("idle_time", 0)
        out["busy_time"] = data.get("busy_time", 0)
        if "host_resources" in data:
            out["host_resources"] = data["host_resources"]
    return out


def user(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    out["running_tasks_num"] = data.get("running_tasks", 0)
    out["running_capacity_total"] = data.get("running_capacity", 0)
    return out


def numbered(nodes: list[dict[str, Any]], key: str = "path") -> list[dict[str, Any]]:
    """Pools and branches by path, given the ids the original's nodes have (1 = root).

    Ours are known by path alone; the ids count the paths in sorted order, so they stay the
    same while no pool or branch is added before them."""
    ordered = sorted(nodes, key=lambda n: str(n.get(key, "")))
    return [{"id": i, "name": n.get(key, ""), **n} for i, n in enumerate(ordered, 1)]
