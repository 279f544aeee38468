"""Job submission: the original's job and block keys (SPEC B §2), validated, then built whole.

``build_job`` either returns a complete Job or raises ``Invalid`` naming the offending field
path (``blocks[1].frame_last: must be ≥ frame_first``); nothing is registered before that.
"""

from __future__ import annotations

import re
from typing import Any

from broker.patterns import Pattern
from broker.validate import Field, Invalid, Schema, check
from workers.scheduler import frames
from workers.scheduler.jobs import Block, Job
from workers.scheduler.masks import Mask, hosts_mask, need_mask, regex_full
from workers.scheduler.states import State
from workers.scheduler.users import User

MAX_TASKS_PER_JOB = 1_000_000
MAX_BLOCKS = 1000
COMMAND_MAX = 65536
TEXT_MAX = 65536
NAME_MAX = 512  # af_db_stringnamelen
MASK_MAX = 4096

NAME = Field(str, max_len=NAME_MAX)
TEXT = Field(str, max_len=TEXT_MAX)
MASK = Field(str, max_len=MASK_MAX)
COMMAND = Field(str, max_len=COMMAND_MAX)
LIMIT = Field(int, min=-1)  # -1 = unlimited / inherit
NEED = Field(int, min=-1)
FLAG = Field(bool)
STR_MAP = Field(dict, max_len=1000, items=Field(str, max_len=COMMAND_MAX))
FILES = Field(list, max_len=1000, items=Field(str, max_len=MASK_MAX))
SERVICE = Field(str, max_len=64)

TASK: Schema = {
    "name": NAME,
    "command": COMMAND,
    "files": FILES,
    "environment": STR_MAP,
}

BLOCK: Schema = {
    "name": NAME,
    "service": SERVICE,
    "parser": SERVICE,
    "capacity": Field(int),
    "capacity_coeff_min": Field(float, min=0),
    "capacity_coeff_max": Field(float, min=0),
    "flags": Field(int, min=0),
    "frame_first": Field(int),
    "frame_last": Field(int),
    "frames_per_task": Field(int),
    "frames_inc": Field(int),
    "sequential": Field(int),
    "tasks_name": NAME,
    "command": COMMAND,
    "working_directory": Field(str, max_len=MASK_MAX),
    "files": FILES,
    "environment": STR_MAP,
    "command_pre": COMMAND,
    "command_post": COMMAND,
    "tasks": Field(list, max_len=MAX_TASKS_PER_JOB, items=Field(dict, fields=TASK)),
    "tasks_num": Field(int, min=0),
    "depend_mask": MASK,
    "tasks_depend_mask": MASK,
    "hosts_mask": MASK,
    "hosts_mask_exclude": MASK,
    "need_memory": NEED,
    "need_power": NEED,
    "need_hdd": NEED,
    "need_properties": MASK,
    "need_gpu_mem_mb": NEED,
    "need_cpu_freq_mgz": NEED,
    "need_cpu_cores": NEED,
    "need_cpu_freq_cores": NEED,
    "errors_retries": LIMIT,
    "errors_avoid_host": LIMIT,
    "errors_task_same_host": LIMIT,
    "errors_forgive_time": LIMIT,
    "task_max_run_time": Field(int),
    "task_min_run_time": Field(int, min=0),
    "task_progress_change_timeout": Field(int),
    "max_running_tasks": LIMIT,
    "max_running_tasks_per_host": LIMIT,
    "parser_coeff": Field(int),
    "tickets": Field(dict, max_len=100, items=Field(int, min=0)),
    "custom_data": TEXT,
    "srv_info": Field(dict, max_len=100),
    "file_size_min": Field(int),
    "file_size_max": Field(int),
    # multi-host tasks are out of scope (SPEC A13); the keys are accepted and ignored
    "multihost_min": Field(int),
    "multihost_max": Field(int),
    "multihost_max_wait": Field(int),
    "multihost_service": SERVICE,
    "multihost_service_wait": Field(int),
}

JOB: Schema = {
    "name": Field(str, required=True, max_len=NAME_MAX),
    "user_name": NAME,
    "host_name": NAME,
    "priority": Field(int, min=0, max=255),
    "annotation": TEXT,
    "custom_data": TEXT,
    "hidden": FLAG,
    "description": TEXT,
    "command_pre": COMMAND,
    "command_post": COMMAND,
    "time_life": Field(int),
    "time_wait": Field(float, min=0),
    "time_creation": Field(float, min=0),
    "depend_mask": MASK,
    "depend_mask_global": MASK,
    "branch": Field(str, max_len=MASK_MAX),
    "folders": Field(dict, max_len=100, items=Field(str, max_len=MASK_MAX)),
    "offline": FLAG,
    "ppa": FLAG,
    "maintenance": FLAG,
    "ignorenimby": FLAG,
    "ignorepaused": FLAG,
    "max_tasks_per_second": Field(int, min=-1, max=10000),
    "max_running_tasks": LIMIT,
    "max_running_tasks_per_host": LIMIT,
    "hosts_mask": MASK,
    "hosts_mask_exclude": MASK,
    "hosts_mask_type": Field(str, choices=("find", "regex")),
    "need_os": MASK,
    "need_properties": MASK,
    "need_power": NEED,
    "need_memory": NEED,
    "need_hdd": NEED,
    "pools": Field(dict, max_len=100, items=Field(int)),
    "solve_method": Field(str, choices=("solve_priority", "solve_order")),
    "solve_need": Field(str, choices=("solve_capacity", "solve_tasksnum")),
    "project": NAME,
    "department": NAME,
    "try_this_tasks_num": Field(int, min=0),
    "try_this_blocks_num": Field(int, min=0),
    "blocks": Field(list, required=True, max_len=MAX_BLOCKS, items=Field(dict, fields=BLOCK)),
}

_NUMERIC = 1 << 0
_SUSPEND_NEW = 1 << 10
_SERVICE_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


def _mask(data: dict[str, Any], key: str, mode: str, path: str) -> Mask | None:
    pattern = data.get(key, "")
    return hosts_mask(pattern, mode, field=f"{path}{key}") if pattern else None


def _regex(data: dict[str, Any], key: str, path: str) -> Pattern | None:
    pattern = data.get(key, "")
    return regex_full(pattern, f"{path}{key}") if pattern else None


def build_block(
    data: dict[str, Any], index: int, mask_mode: str, progress_timeout: int, with_tasks: bool = True
) -> Block:
    path = f"blocks[{index}]."
    numeric = bool(data.get("flags", 0) & _NUMERIC)
    service = data.get("service", "generic")
    if not _SERVICE_NAME.fullmatch(service):
        raise Invalid(
            f"{path}service", f"must be a service name (letters, digits, _ . -), got {service!r}"
        )
    if numeric:
        first, last = data.get("frame_first", 0), data.get("frame_last", 0)
        per, inc = data.get("frames_per_task", 1), data.get("frames_inc", 1)
        if last < first:
            raise Invalid(f"{path}frame_last", f"must be ≥ frame_first ({first}), got {last}")
        if inc < 1:
            raise Invalid(f"{path}frames_inc", f"must be ≥ 1, got {inc}")
        if per < 1:
            raise Invalid(f"{path}frames_per_task", f"must be ≥ 1 in a numeric block, got {per}")
        tasks_num = frames.tasks_count(first, last, per, inc)
        list_tasks = None
    else:
        list_tasks = data.get("tasks") or []
        if not list_tasks:
            raise Invalid(
                f"{path}tasks", "a block without the numeric flag needs a non-empty task list"
            )
        tasks_num = len(list_tasks)
    if tasks_num > MAX_TASKS_PER_JOB:
        raise Invalid(
            f"{path}frame_last", f"makes {tasks_num} tasks; at most {MAX_TASKS_PER_JOB} per job"
        )
    block = Block(
        index=index,
        name=data.get("name") or f"block{index}",
        numeric=numeric,
        tasks_num=tasks_num,
        service=service,
        parser=data.get("parser", ""),
        capacity=max(1, data.get("capacity", 1000)),
        capacity_coeff_min=data.get("capacity_coeff_min", 0.0),
        capacity_coeff_max=data.get("capacity_coeff_max", 0.0),
        flags=data.get("flags", 0),
        frame_first=data.get("frame_first", 0),
        frame_last=data.get("frame_last", 0),
        frames_per_task=data.get("frames_per_task", 1),
        frames_inc=data.get("frames_inc", 1),
        sequential=data.get("sequential", 1),
        tasks_name=data.get("tasks_name", ""),
        command=data.get("command", ""),
        working_directory=data.get("working_directory", ""),
        files=data.get("files", []),
        environment=data.get("environment", {}),
        command_pre=data.get("command_pre", ""),
        command_post=data.get("command_post", ""),
        list_tasks=list_tasks,
        depend_mask=_regex(data, "depend_mask", path),
        tasks_depend_mask=_regex(data, "tasks_depend_mask", path),
        hosts_mask=_mask(data, "hosts_mask", mask_mode, path),
        hosts_mask_exclude=_mask(data, "hosts_mask_exclude", mask_mode, path),
        need_properties=need_mask(data["need_properties"]) if data.get("need_properties") else None,
        tickets=data.get("tickets", {}),
        custom_data=data.get("custom_data", ""),
        task_progress_change_timeout=data.get("task_progress_change_timeout", progress_timeout),
        params={k: v for k, v in data.items() if k != "tasks"},
    )
    for key in [
        "need_memory",
        "need_power",
        "need_hdd",
        "need_gpu_mem_mb",
        "need_cpu_freq_mgz",
        "need_cpu_cores",
        "need_cpu_freq_cores",
        "errors_retries",
        "errors_avoid_host",
        "errors_task_same_host",
        "errors_forgive_time",
        "task_max_run_time",
        "task_min_run_time",
        "max_running_tasks",
        "max_running_tasks_per_host",
        "parser_coeff",
    ]:
        if key in data:
            setattr(block, key, data[key])
    if with_tasks:
        block.init_tasks(suspended=bool(block.flags & _SUSPEND_NEW))
    return block


def build_job(
    body: Any,
    *,
    job_id: int,
    user: User,
    now: float,
    progress_timeout: int = -1,
    restoring: bool = False,
) -> Job:
    """A complete job from a submission, or Invalid naming the first wrong field.

    `restoring`: the body is one we validated and stored before; its task arrays follow."""
    data = body if restoring else check(body, JOB, "job")
    if not data["name"].strip():
        raise Invalid("job.name", "must not be empty")
    if not data["blocks"]:
        raise Invalid("job.blocks", "a job needs at least one block")
    mode = data.get("hosts_mask_type", "find")
    blocks = []
    try:
        for i, b in enumerate(data["blocks"]):
            blocks.append(build_block(b, i, mode, progress_timeout, with_tasks=not restoring))
    except Invalid as exc:
        raise Invalid(f"job.{exc.path}", exc.text) from exc
    names = [b.name for b in blocks]
    if len(set(names)) != len(names):
        raise Invalid("job.blocks", f"block names must be unique, got {names}")
    total = sum(b.tasks_num for b in blocks)
    if total > MAX_TASKS_PER_JOB:
        raise Invalid("job.blocks", f"{total} tasks in all; at most {MAX_TASKS_PER_JOB} per job")
    job = Job(
        id=job_id,
        serial=job_id,
        name=data["name"].strip(),
        user_name=user.name,
        blocks=blocks,
        user=user,
        host_name=data.get("host_name", ""),
        priority=data.get("priority", 99),
        annotation=data.get("annotation", ""),
        description=data.get("description", ""),
        custom_data=data.get("custom_data", ""),
        hidden=data.get("hidden", False),
        command_pre=data.get("command_pre", ""),
        command_post=data.get("command_post", ""),
        time_creation=now,
        time_life=data.get("time_life", -1),
        time_wait=data.get("time_wait", 0.0),
        depend_mask=_regex(data, "depend_mask", "job."),
        depend_mask_global=_regex(data, "depend_mask_global", "job."),
        branch=data.get("branch", "/"),
        folders=data.get("folders", {}),
        ppa=data.get("ppa", False),
        maintenance=data.get("maintenance", False),
        ignorenimby=data.get("ignorenimby", False),
        ignorepaused=data.get("ignorepaused", False),
        max_tasks_per_second=data.get("max_tasks_per_second", -1),
        max_running_tasks=data.get("max_running_tasks", -1),
        max_running_tasks_per_host=data.get("max_running_tasks_per_host", -1),
        hosts_mask=_mask(data, "hosts_mask", mode, "job."),
        hosts_mask_exclude=_mask(data, "hosts_mask_exclude", mode, "job."),
        need_os=need_mask(data["need_os"]) if data.get("need_os") else None,
        need_properties=need_mask(data["need_properties"]) if data.get("need_properties") else None,
        need_power=data.get("need_power", -1),
        need_memory=data.get("need_memory", -1),
        need_hdd=data.get("need_hdd", -1),
        pools={k: max(-100, min(100, v)) for k, v in data.get("pools", {}).items() if v},
        solve_method=data.get("solve_method", "solve_priority"),
        solve_need=data.get("solve_need", "solve_capacity"),
        project=data.get("project", ""),
        department=data.get("department", ""),
        params={k: v for k, v in data.items() if k != "blocks"},
        paused=data.get("offline", False),
    )
    job.state = State.RDY
    return job
