"""The job format's reference: every key a submission may hold, with its type, default and
meaning (`afcmd job keys`).

Keys and types come from the validator's schemas (submit.JOB, BLOCK, TASK) and defaults from
the Job and Block a submission is built into, so the reference cannot drift from what the
server accepts; only the meanings are written here, and a unit test holds them to the
schemas key for key.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

from broker.validate import Field, Schema
from workers.scheduler.jobs import Block, Job
from workers.scheduler.submit import BLOCK, JOB, TASK

_IGNORED = "accepted from the original's submitters and ignored"
_MASK_MODE = "read as hosts_mask_type says (find: name beginnings; regex: whole name)"
_FIND_NEED = "words searched anywhere in the render's"

JOB_MEANINGS: dict[str, str] = {
    "name": "the job's name, shown everywhere and matched by job masks (jlist, jdel)",
    "user_name": "the owner; the sender's proven identity wins when af_auth is on",
    "host_name": "the host it was submitted from",
    "priority": "higher runs first (0-255); the user's priority weighs in too",
    "annotation": "a note shown beside the job",
    "custom_data": "free text kept with the job for tools",
    "hidden": "hidden from monitors' default lists",
    "description": "free text describing the job",
    "command_pre": "a command the system job runs once before the first task starts",
    "command_post": "a command the system job runs once the job is deleted",
    "time_life": "seconds after creation it is deleted (-1: the user's jobs_life_time)",
    "time_wait": "a Unix time before which no task starts",
    "time_creation": "the server stamps its own; " + _IGNORED,
    "depend_mask": "regex over the user's job names: wait until every match is done",
    "depend_mask_global": "as depend_mask, over every user's jobs",
    "branch": "the job's branch in the tree of branches (solving order between groups)",
    "folders": "name -> path of the job's folders (scene, output), for monitors",
    "offline": "submitted paused: nothing starts until afcmd jstart",
    "ppa": "preview pending approval: with a stepped sequential, only the stepped frames "
    "run until approved",
    "maintenance": "a maintenance job: its task named after a render runs on that render",
    "ignorenimby": "runs on renders in nimby and NIMBY too",
    "ignorepaused": "runs on paused renders",
    "max_tasks_per_second": "at most this many task starts a second (-1: unlimited)",
    "max_running_tasks": "at most this many tasks running at once (-1: unlimited)",
    "max_running_tasks_per_host": "at most this many on one render (-1: unlimited)",
    "hosts_mask": "renders it may run on, " + _MASK_MODE,
    "hosts_mask_exclude": "renders it must not run on, " + _MASK_MODE,
    "hosts_mask_type": "how hosts masks are read: find (the original's: words a render's "
    "name starts with, 'farm ws') or regex (a regular expression over the whole name)",
    "need_os": _FIND_NEED + " OS words ('linux', 'windows')",
    "need_properties": _FIND_NEED + " properties",
    "need_power": "minimum render power (-1: none)",
    "need_memory": "minimum free memory, MB (-1: none)",
    "need_hdd": "minimum free disk, GB (-1: none)",
    "pools": "pool path -> weight added to the render's priority; ≤ -100 forbids the "
    "pool, ≥ 100 requires it",
    "solve_method": "solve_priority (by priority) or solve_order (by submission order)",
    "solve_need": "solve_capacity (least running capacity first) or solve_tasksnum "
    "(fewest running tasks first)",
    "project": "project name, for statistics",
    "department": "department name, for statistics",
    "try_this_tasks_num": _IGNORED,
    "try_this_blocks_num": _IGNORED,
    "blocks": "the job's blocks (at least one); see `afcmd job keys block`",
}

BLOCK_MEANINGS: dict[str, str] = {
    "name": "the block's name, unique in its job (default blockN); afcmd accepts it "
    "wherever a block index is",
    "service": "the service that runs its tasks (generic, blender, nuke, ...)",
    "parser": "the output parser that reads progress from the task's output",
    "capacity": "how much of a render's capacity one task takes",
    "capacity_coeff_min": "with flag 2 (variable capacity): a task may take as little as "
    "capacity times this (0: fixed)",
    "capacity_coeff_max": "with flag 2: as much as capacity times this (0: fixed)",
    "flags": "bits: 1 numeric (tasks are frames frame_first..frame_last), 2 variable "
    "capacity, 1024 new tasks suspended",
    "frame_first": "first frame of a numeric block",
    "frame_last": "last frame of a numeric block (≥ frame_first)",
    "frames_per_task": "frames one task renders (≥ 1 in a numeric block)",
    "frames_inc": "frame step (≥ 1): 2 renders every other frame",
    "sequential": "order tasks start in: 1 first to last, -1 last to first, N > 1 first, "
    "last, every Nth frame, then the rest; 0 binary subdivision",
    "tasks_name": "task names: @#@ is the frame (numeric) or the task's name (list)",
    "command": "the command; in a numeric block @#@ groups are the task's first and last "
    "frame (@####@ zero-padded), in a list block @#@ is the task's command",
    "working_directory": "where the task runs",
    "files": "output files the task makes, for previews and checks",
    "environment": "variables added to the task's environment",
    "command_pre": "a command the system job runs once, with the job's, before its tasks "
    "start (in the block's working_directory)",
    "command_post": "a command the system job runs once the job is deleted (in the "
    "block's working_directory)",
    "tasks": "tasks of a list block (without the numeric flag); see `afcmd job keys task`",
    "tasks_num": "the server counts the tasks; " + _IGNORED,
    "depend_mask": "regex over the job's block names: wait until every match is done",
    "tasks_depend_mask": "regex over the job's block names: a task waits for the tasks "
    "there covering its frames",
    "hosts_mask": "renders the block may run on, " + _MASK_MODE,
    "hosts_mask_exclude": "renders the block must not run on, " + _MASK_MODE,
    "need_memory": "minimum free memory, MB (-1: none)",
    "need_power": "minimum render power (-1: none)",
    "need_hdd": "minimum free disk, GB (-1: none)",
    "need_properties": _FIND_NEED + " properties",
    "need_gpu_mem_mb": "minimum free GPU memory, MB (-1: none)",
    "need_cpu_freq_mgz": "minimum CPU frequency, MHz (-1: none)",
    "need_cpu_cores": "minimum CPU cores (-1: none)",
    "need_cpu_freq_cores": "minimum frequency times cores, MHz (-1: none)",
    "errors_retries": "times a failed task is retried (-1: the user's errors_retries)",
    "errors_avoid_host": "errors on one render before the block avoids it (-1: the "
    "user's); afcmd brerrors resets them",
    "errors_task_same_host": "errors of one task on one render before the task avoids it "
    "(-1: the user's)",
    "errors_forgive_time": "seconds after which a render's errors are forgiven (-1: the "
    "user's, af_errors_forgivetime)",
    "task_max_run_time": "seconds a task may run before it is stopped as an error (0: no limit)",
    "task_min_run_time": "a task done sooner than this many seconds is an error (0: none)",
    "task_progress_change_timeout": "seconds without progress before a task is an error "
    "(-1: af_task_progress_change_timeout)",
    "max_running_tasks": "at most this many of its tasks running at once (-1: unlimited)",
    "max_running_tasks_per_host": "at most this many on one render (-1: unlimited)",
    "parser_coeff": "the parser's progress coefficient",
    "tickets": "ticket name -> count a task takes of a render's or pool's tickets",
    "custom_data": "free text kept with the block for tools",
    "srv_info": _IGNORED,
    "file_size_min": _IGNORED,
    "file_size_max": _IGNORED,
    "multihost_min": "multi-host tasks are not supported; " + _IGNORED,
    "multihost_max": "multi-host tasks are not supported; " + _IGNORED,
    "multihost_max_wait": "multi-host tasks are not supported; " + _IGNORED,
    "multihost_service": "multi-host tasks are not supported; " + _IGNORED,
    "multihost_service_wait": "multi-host tasks are not supported; " + _IGNORED,
}

TASK_MEANINGS: dict[str, str] = {
    "name": "the task's name",
    "command": "put into the block's @#@ (appended when the block's command has none)",
    "files": "output files the task makes",
    "environment": "variables added to the task's environment",
}

# where the built object's default is not what a key left out means
_DEFAULTS: dict[tuple[str, str], str] = {
    ("job", "user_name"): "the sender (af_username)",
    ("job", "host_name"): "",
    ("job", "time_creation"): "now",
    ("job", "hosts_mask_type"): "find",
    ("block", "name"): "blockN",
    ("block", "tasks"): "[]",
    ("block", "tasks_num"): "counted",
    ("block", "task_progress_change_timeout"): "-1",
}

LEVELS: dict[str, tuple[Schema, dict[str, str], type | None]] = {
    "job": (JOB, JOB_MEANINGS, Job),
    "block": (BLOCK, BLOCK_MEANINGS, Block),
    "task": (TASK, TASK_MEANINGS, None),
}


class Key(NamedTuple):
    name: str
    type: str
    default: str
    meaning: str


def type_text(spec: Field) -> str:
    """A field's type with its bounds, as a submitter writes it."""
    names = {int: "int", float: "number", str: "str", bool: "bool", list: "list", dict: "object"}
    text = names.get(spec.kind, spec.kind.__name__)
    if spec.kind is list and spec.items is not None:
        text = f"list of {'objects' if spec.items.kind is dict else names[spec.items.kind]}"
    elif spec.kind is dict and spec.items is not None:
        text = f"object of {names[spec.items.kind]}"
    if spec.choices is not None:
        return " | ".join(map(str, spec.choices))
    if spec.min is not None and spec.max is not None:
        text += f" {spec.min:g}..{spec.max:g}"
    elif spec.min is not None:
        text += f" ≥ {spec.min:g}"
    return text


def _built_defaults(cls: type | None) -> dict[str, Any]:
    if cls is None:
        return {}
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if value else ""
    if isinstance(value, (list, dict)):
        return str(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def keys(level: str) -> list[Key]:
    """Every key of one level ("job", "block" or "task"), in the schema's order."""
    schema, meanings, cls = LEVELS[level]
    built = _built_defaults(cls)
    rows = []
    for name, spec in schema.items():
        if spec.required:
            default = "required"
        elif (level, name) in _DEFAULTS:
            default = _DEFAULTS[level, name]
        elif name in built:
            default = _shown(built[name])
        else:
            default = _shown(spec.kind())  # "", [], {}, 0: nothing
        rows.append(Key(name, type_text(spec), default, meanings.get(name, "")))
    return rows
