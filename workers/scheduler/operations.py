"""Operations on jobs, tasks, renders and users (SPEC B §15), with the original's names.

Each operation is validated first and applied whole; running tasks are never changed
under a render's feet: they are asked to stop, and the state asked for is set when the
render reports the end (SPEC B §5, manual task operations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from broker.validate import Field, Invalid, Schema, check
from workers.scheduler import wakes
from workers.scheduler.masks import hosts_mask, regex_full
from workers.scheduler.renders import RenderFlag
from workers.scheduler.states import State

if TYPE_CHECKING:
    from workers.scheduler.farm import Farm
    from workers.scheduler.jobs import Block, Job
    from workers.scheduler.renders import Render
    from workers.scheduler.users import User

JOB_OPERATIONS = [
    "delete",
    "start",
    "pause",
    "stop",
    "restart",
    "restart_pause",
    "restart_errors",
    "restart_running",
    "restart_skipped",
    "restart_done",
    "restart_warnings",
    "reset_error_hosts",
]
TASK_OPERATIONS = [
    "skip",
    "done",
    "restart",
    "restart_errors",
    "restart_running",
    "restart_done",
    "restart_skipped",
    "suspend",
    "continue",
    "reset_error_hosts",
]
RENDER_OPERATIONS = (
    "eject_tasks",
    "eject_tasks_keep_my",
    "exit",
    "delete",
    "heal_sick",
    "farm",
    "set_pool",
    "reassign_pool",
    "tickets",
    "wol_sleep",
    "wol_wake",
)
POOL_OPERATIONS = (
    "add_pool",
    "delete",
    "farm",
    "heal_sick",
    "eject_tasks",
    "exit",
    "delete_renders",
    "tickets",
)
FARM_MODES = (
    "service_add",
    "service_remove",
    "service_enable",
    "service_disable",
    "clear_services",
)

JOB_PARAMS: Schema = {
    "priority": Field(int, min=0, max=255),
    "max_running_tasks": Field(int, min=-1),
    "max_running_tasks_per_host": Field(int, min=-1),
    "hosts_mask": Field(str, max_len=4096),
    "hosts_mask_exclude": Field(str, max_len=4096),
    "annotation": Field(str, max_len=65536),
    "custom_data": Field(str, max_len=65536),
    "time_wait": Field(float, min=0),
    "depend_mask": Field(str, max_len=4096),
}
RENDER_PARAMS: Schema = {
    "priority": Field(int, min=0, max=255),
    "nimby": Field(bool),
    "NIMBY": Field(bool),
    "paused": Field(bool),
    "annotation": Field(str, max_len=65536),
    "custom_data": Field(str, max_len=65536),
    "capacity_host": Field(int, min=-1),
    "max_tasks_host": Field(int, min=-1),
    "user_name": Field(str, max_len=255),
}
USER_PARAMS: Schema = {
    "priority": Field(int, min=0, max=255),
    "max_running_tasks": Field(int, min=-1),
    "max_running_tasks_per_host": Field(int, min=-1),
    "paused": Field(bool),
    "errors_retries": Field(int, min=-1),
    "errors_avoid_host": Field(int, min=-1),
    "errors_task_same_host": Field(int, min=-1),
    "errors_forgive_time": Field(int, min=-1),
    "custom_data": Field(str, max_len=65536),
}

# task states each operation affects (None: all), and the state it leaves
_TASK_TARGETS: dict[str, tuple[int | None, int]] = {
    "skip": (None, State.DON | State.SKP),
    "done": (None, State.DON),
    "restart": (None, State.RDY),
    "restart_errors": (State.ERR, State.RDY),
    "restart_running": (State.RUN, State.RDY),
    "restart_done": (State.DON, State.RDY),
    "restart_skipped": (State.SKP, State.RDY),
    "restart_warnings": (State.WRN, State.RDY),
    "suspend": (None, State.SUS),
}


# --- tasks ---------------------------------------------------------------------------------


def set_task(
    farm: Farm, job: Job, block: Block, i: int, state: int, reason: str, now: float
) -> bool:
    """A manual state change: a running task is stopped first; a resting one changes now."""
    if i in block.running:
        farm.stop_task(job, block, i, reason, state if state != State.RDY else 0)
        return True
    block.set_state(i, state)
    block.errors[i] = 0
    block.task_error_hosts.pop(i, None)
    block.add_task_log(i, now, reason)
    return True


def task_operation(
    farm: Farm, job: Job, block: Block, task_ids: list[int] | None, op: str, now: float
) -> int:
    """Apply a task operation to some or all tasks of a block; returns how many changed."""
    if op == "reset_error_hosts":
        block.error_hosts.clear()
        block.task_error_hosts.clear()
        return 1
    tasks = range(block.tasks_num) if task_ids is None else task_ids
    for i in tasks:
        if not 0 <= i < block.tasks_num:
            raise Invalid(
                "task_ids", f"block '{block.name}' has no task {i} (it has {block.tasks_num})"
            )
    changed = 0
    if op == "continue":
        for i in tasks:
            if block.states[i] & State.SUS:
                changed += set_task(farm, job, block, i, State.RDY, "continued", now)
        return changed
    affects, target = _TASK_TARGETS[op]
    for i in tasks:
        state = block.states[i]
        if affects is not None and not state & affects:
            continue
        if op == "restart_running" and i not in block.running:
            continue
        changed += set_task(farm, job, block, i, target, f"{op} by request", now)
    return changed


# --- jobs ----------------------------------------------------------------------------------


def system_operation(farm: Farm, job: Job, blocks: list[Block], op: str, now: float) -> bool:
    """The system job: never deleted; a restart resets the queues of its blocks (SPEC A10).
    True when the operation was the system job's (and handled)."""
    sysjob = farm.sysjob
    if sysjob is None or job is not sysjob.job:
        return False
    if op == "delete":
        raise Invalid("operation", "the system job cannot be deleted")
    if op.startswith("restart"):
        for block in blocks:
            sysjob.reset(block, now)
        farm.refresh_job(job, now)
        return True
    return False


def job_operation(farm: Farm, job: Job, op: str, now: float) -> None:
    if system_operation(farm, job, job.blocks, op, now):
        return
    if job.deleting:
        raise Invalid("operation", f"job {job.id} is being deleted")
    if op == "delete":
        farm.delete_job(job, now)
        return
    if op == "pause":
        job.paused = True
    elif op == "start":
        job.paused = False
    elif op in ("stop", "restart_pause"):
        job.paused = True
        for block in job.blocks:
            task_operation(
                farm, job, block, None, "restart_running" if op == "stop" else "restart", now
            )
    elif op == "reset_error_hosts":
        for block in job.blocks:
            task_operation(farm, job, block, None, op, now)
    else:
        for block in job.blocks:
            task_operation(farm, job, block, None, op, now)
    job.add_log(now, op)
    farm.dirty_jobs.add(job.id)
    farm.refresh_job(job, now)
    farm.solve_needed = True


def job_masks(job: Job, params: dict[str, Any]) -> dict[str, Any]:
    """The masks among a job's new params, compiled (None clears one), or `Invalid` naming
    the first bad one; called for every job of an action before any job changes."""
    check(params, JOB_PARAMS, "params")
    mode = job.params.get("hosts_mask_type", "find")
    masks: dict[str, Any] = {
        k: hosts_mask(v, mode, field=f"params.{k}") if v else None
        for k, v in params.items()
        if k.startswith("hosts_mask")
    }
    if "depend_mask" in params:
        value = params["depend_mask"]
        masks["depend_mask"] = regex_full(value, "params.depend_mask") if value else None
    return masks


def job_params(farm: Farm, job: Job, params: dict[str, Any], now: float) -> None:
    masks = job_masks(job, params)
    for key, value in params.items():
        setattr(job, key, masks.get(key, value))
    if "priority" in params and job in job.user.jobs:
        job.user.jobs.remove(job)
        job.user.add_job(job)
    job.params.update(params)  # the stored submission follows, so a restart keeps the edit
    job.add_log(now, f"params changed: {params}")
    farm.dirty_jobs.add(job.id)
    farm.refresh_job(job, now)
    farm.solve_needed = True


# --- renders and users ---------------------------------------------------------------------


def set_tickets(node: Any, details: dict[str, Any]) -> None:
    """Host tickets of a render or pool: `count` of `name` per host; -1 removes the ticket."""
    name, count = details.get("name", ""), details.get("count")
    if not name or not isinstance(count, int) or count < -1:
        raise Invalid("operation", "tickets needs a name and a count (-1 removes the ticket)")
    if count == -1:
        node.tickets_host.pop(name, None)
    else:
        node.tickets_host[name] = count


def farm_services(node: Any, mode: str, service: str) -> None:
    """The original's `farm` operation on a render's (or pool's) service lists."""
    if mode == "clear_services":
        node.services.clear()
        node.services_disabled.clear()
        return
    if not service:
        raise Invalid("operation.name", f"{mode} needs a service name")
    add, remove = {
        "service_add": (node.services, None),
        "service_remove": (None, node.services),
        "service_disable": (node.services_disabled, None),
        "service_enable": (None, node.services_disabled),
    }[mode]
    if add is not None and service not in add:
        add.append(service)
    if remove is not None and service in remove:
        remove.remove(service)


def render_operation(
    farm: Farm,
    render: Render,
    op: str,
    user_name: str,
    now: float,
    details: dict[str, Any] | None = None,
) -> None:
    if op in ("wol_sleep", "wol_wake"):
        request = wakes.request_sleep if op == "wol_sleep" else wakes.request_wake
        request(farm, render, now, f"asked by {user_name or '?'}")
        return
    if op == "tickets":
        set_tickets(render, details or {})
        farm.dirty_renders.add(render.id)
        farm.solve_needed = True
        render.add_log(now, f"tickets {render.tickets_host} by {user_name or '?'}")
        return
    if op == "farm":
        details = details or {}
        farm_services(render, details.get("mode", ""), details.get("name", ""))
        farm.dirty_renders.add(render.id)
        farm.solve_needed = True
        render.add_log(
            now, f"farm {details.get('mode')} {details.get('name', '')} by {user_name or '?'}"
        )
        return
    if op in ("set_pool", "reassign_pool"):
        details = details or {}
        target = (
            farm.pools.assign(render.name).path
            if op == "reassign_pool"
            else details.get("name", "")
        )
        farm.move_render(render, target)
        render.add_log(now, f"pool {target} by {user_name or '?'}")
        return
    if op in ("eject_tasks", "eject_tasks_keep_my"):
        for key in list(render.tasks):
            job = farm.jobs.get(key[0])
            if job is None or (op == "eject_tasks_keep_my" and job.user_name == user_name):
                continue
            farm.stop_task(job, job.blocks[key[1]], key[2], f"ejected from {render.name}")
    elif op == "heal_sick":
        render.flags &= ~RenderFlag.SIC
        render.sick_records.clear()
        farm.dirty_renders.add(render.id)
    elif op == "delete":
        if render.online:
            raise Invalid(
                "operation", f"render {render.name} is online: only offline renders can be deleted"
            )
        farm.delete_render(render)
        return
    elif op == "exit":
        farm.exits.append(render)
    render.add_log(now, f"{op} by {user_name or '?'}")


def render_params(
    farm: Farm, render: Render, params: dict[str, Any], user_name: str, now: float
) -> None:
    check(params, RENDER_PARAMS, "params")
    for key, flag in (
        ("nimby", RenderFlag.NbY),
        ("NIMBY", RenderFlag.NBY),
        ("paused", RenderFlag.PAU),
    ):
        if key not in params:
            continue
        if key == "paused":
            render.flags = (render.flags | flag) if params[key] else (render.flags & ~flag)
        elif params[key]:  # nimby and NIMBY exclude each other
            render.flags = (render.flags | flag) & ~(RenderFlag.NbY ^ RenderFlag.NBY ^ flag)
        else:  # either one false sets the render free, as the original's setFree
            render.flags &= ~(RenderFlag.NbY | RenderFlag.NBY)
    for key in (
        "priority",
        "annotation",
        "custom_data",
        "capacity_host",
        "max_tasks_host",
        "user_name",
    ):
        if key in params:
            setattr(render, key, params[key])
    render.add_log(now, f"params changed by {user_name or '?'}: {params}")
    farm.dirty_renders.add(render.id)
    farm.solve_needed = True


def user_params(farm: Farm, user: User, params: dict[str, Any], now: float) -> None:
    check(params, USER_PARAMS, "params")
    for key, value in params.items():
        setattr(user, key, value)
    farm.dirty_users.add(user.name)
    farm.solve_needed = True


def pool_operation(farm: Farm, path: str, op: dict[str, Any], user_name: str, now: float) -> None:
    kind = op["type"]
    if kind == "add_pool":
        pool = farm.pools.add(path, op.get("name", ""), now)
        farm.dirty_pools.add(pool.path)
        return
    if kind == "delete":
        farm.pools.delete(path)
        farm.deleted_pools.append(path)
        return
    if kind == "tickets":
        set_tickets(farm.pools.by_path[path], op)
        farm.dirty_pools.add(path)
        farm.solve_needed = True
        return
    if kind == "farm":
        farm_services(farm.pools.by_path[path], op.get("mode", ""), op.get("name", ""))
        farm.dirty_pools.add(path)
        farm.solve_needed = True
        return
    below = {p.path for p in farm.pools.below(path)}
    for render in [r for r in farm.renders.values() if r.pool in below]:
        if kind == "delete_renders":
            if not render.online:
                farm.delete_render(render)
        else:
            render_operation(farm, render, kind, user_name, now)


def pool_params(farm: Farm, path: str, params: dict[str, Any], now: float) -> None:
    """Change a pool; renders below it hear of new timing at once."""
    farm.pools.set_params(path, params)
    farm.dirty_pools.add(path)
    farm.solve_needed = True
    below = {p.path for p in farm.pools.below(path)}
    farm.config_changed.extend(r for r in farm.renders.values() if r.pool in below and r.online)
