"""Client requests `get` and `action`, in the original's vocabulary (SPEC B §3, §15)."""

from __future__ import annotations

from typing import Any

from broker.validate import Field, Invalid, Schema, check
from workers.scheduler import append, metrics
from workers.scheduler import operations as ops
from workers.scheduler import permissions as perms
from workers.scheduler.farm import Farm, NotFound, Refused
from workers.scheduler.jobs import Block, Job
from workers.scheduler.monitors import task_change
from workers.scheduler.output import OutputStore
from workers.scheduler.store import FILE_NAME
from workers.scheduler.why import explain, plain_words

IDS = Field(list, max_len=100_000, items=Field(int, min=0))
NAMES = Field(list, max_len=100_000, items=Field(str, max_len=255))

GET: Schema = {
    "type": Field(
        str,
        required=True,
        choices=(
            "renders",
            "users",
            "pools",
            "branches",
            "jobs",
            "tasks",
            "stat",
            "store",
            "metrics",
            "config",
        ),
    ),
    "mode": Field(
        str,
        choices=("list", "full", "log", "why", "output", "resources", "info", "history", "table"),
    ),
    "ids": IDS,
    "names": NAMES,
    "mask": Field(str, max_len=4096),
    "users": NAMES,
    "job_id": Field(int, min=0),
    "block_ids": IDS,
    "task_ids": IDS,
    "attempt": Field(int, min=0),
    "limit": Field(int, min=1, max=1_000_000),
    "with_tasks": Field(bool),  # mode full: the task lists of list blocks too (the gateway's)
}
OPERATION: Schema = {
    "type": Field(str, required=True, max_len=64),
    "task_ids": IDS,
    "mode": Field(str, max_len=64),
    "name": Field(str, max_len=255),
    "count": Field(int, min=-1),
    "blocks": Field(list),  # append_blocks: checked whole by workers.scheduler.append
    "tasks": Field(list),  # append_tasks
}
ACTION: Schema = {
    "type": Field(str, required=True, choices=("jobs", "renders", "users", "pools")),
    "ids": IDS,
    "names": NAMES,
    "mask": Field(str, max_len=4096),
    "block_ids": IDS,
    "operation": Field(dict, fields=OPERATION),
    "params": Field(dict, max_len=100),
    "user_name": Field(str, max_len=255),
    "host_name": Field(str, max_len=255),
}


def get(
    farm: Farm,
    outputs: OutputStore,
    req: Any,
    now: float,
    counters: dict[str, int],
    store_check: Any = None,
    store_state: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> Any:
    req = check(req, GET, "get")
    what, mode = req["type"], req.get("mode", "list")
    if what == "config":
        # any caller may read it, as any may read the farm: what it holds is masked
        # (config.loader.shown_config: passwords, tokens and conninfo passwords as ***), and
        # the key material is never in it, only the paths of its files on the server's host
        if config is None:
            raise Invalid("get.type", "this scheduler holds no configuration to show")
        return {"config": config}
    if what == "store":
        if store_check is None:
            raise Invalid("get.type", "no store to check")
        return {"store": store_check()}
    if what == "metrics":  # O(renders + blocks): what a /metrics scrape costs here
        folder = str((store_state or {}).get("folder", ""))
        return {
            "metrics": metrics.snapshot(farm, farm.timings, metrics.store_size(folder, FILE_NAME))
        }
    if what == "renders":
        renders = farm.select_renders(req.get("names"), req.get("mask"))
        if mode == "log":
            return {"renders": [{"name": r.name, "id": r.id, "log": list(r.log)} for r in renders]}
        if mode == "table":  # the monitor's table: a few fields each
            return {"renders": [r.table_json() for r in renders]}
        if mode == "history":  # the recent resources of the renders asked for by name
            return {
                "renders": [
                    {"name": r.name, "id": r.id, "history": r.history.to_json()} for r in renders
                ]
            }
        return {"renders": [r.to_json(full=mode != "list") for r in renders]}
    if what == "users":
        return {"users": [u.to_json() for u in sorted(farm.users.values(), key=lambda u: u.name)]}
    if what == "pools":
        renders = list(farm.renders.values())
        pools = sorted(farm.pools.by_path.values(), key=lambda p: p.path)
        return {"pools": [farm.pools.to_json(p, renders) for p in pools]}
    if what == "branches":
        return {"branches": [b.to_json() for b in farm.branches.by_path.values()]}
    if what == "jobs":
        jobs = select_jobs(farm, req)
        return {"jobs": [job_json(farm, j, mode, now, req.get("with_tasks", False)) for j in jobs]}
    if what == "tasks":
        return tasks(farm, outputs, req, mode)
    store = {"store": store_state} if store_state is not None else {}
    return {"scheduler": {**farm.stat(), "messages": counters, **store}}


def select_jobs(farm: Farm, req: dict[str, Any]) -> list[Job]:
    jobs = farm.select_jobs(req.get("ids"), req.get("mask"))
    if req.get("users"):
        users = set(req["users"])
        jobs = [j for j in jobs if j.user_name in users]
    return jobs


def job_json(
    farm: Farm, job: Job, mode: str, now: float, with_tasks: bool = False
) -> dict[str, Any]:
    data = job.summary()
    if farm.sysjob is not None and job is farm.sysjob.job:
        data["system"] = farm.sysjob.summary()
    if mode == "full":
        data["params"] = job.params
        data["blocks"] = [
            {"name": b.name, "service": b.service, **b.params, **b.progress()} for b in job.blocks
        ]
        if with_tasks:
            for block, shown in zip(job.blocks, data["blocks"], strict=True):
                if block.list_tasks is not None:
                    shown["tasks"] = block.list_tasks
        data["log"] = list(job.log)
    elif mode == "log":
        data["log"] = list(job.log)
    elif mode == "why":
        why = explain(farm, job, now)
        data["why"] = why
        data["why_text"] = plain_words(job, why)
    return data


def _job(farm: Farm, job_id: int | None) -> Job:
    if job_id is None:
        raise Invalid("job_id", "required for tasks")
    job = farm.job(job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id}")
    return job


def _blocks(job: Job, block_ids: list[int] | None) -> list[Block]:
    if block_ids is None:
        return job.blocks
    for b in block_ids:
        if not 0 <= b < len(job.blocks):
            raise NotFound(f"job {job.id} has no block {b} (it has {len(job.blocks)})")
    return [job.blocks[b] for b in block_ids]


def tasks(farm: Farm, outputs: OutputStore, req: dict[str, Any], mode: str) -> dict[str, Any]:
    job = _job(farm, req.get("job_id"))
    blocks = _blocks(job, req.get("block_ids"))
    task_ids = req.get("task_ids")
    limit = req.get("limit", 10_000)
    out = []
    for block in blocks:
        for i in task_ids if task_ids is not None else range(block.tasks_num):
            if not 0 <= i < block.tasks_num:
                raise NotFound(f"block '{block.name}' has no task {i} (it has {block.tasks_num})")
            if len(out) >= limit:
                break
            out.append(task_json(block, i, outputs, job.id, mode, req.get("attempt", 0)))
    return {"job_id": job.id, "name": job.name, "tasks": out}


def task_json(
    block: Block, i: int, outputs: OutputStore, job_id: int, mode: str, attempt: int
) -> dict[str, Any]:
    data = {
        "block_name": block.name,
        "name": block.task_name(i),
        "frames": list(block.task_frames(i)),
        **task_change(block, i),
    }
    run = block.running.get(i)
    if run is not None:
        data.update(frame=run.frame, activity=run.activity)
    if mode == "log":
        data["log"] = list(block.task_logs.get(i, ()))
    elif mode == "info":  # what a render is given to run it (the original's task exec)
        data.update(
            command=block.task_command(i),
            working_directory=block.task_working_directory(i),
            files=block.task_files(i),
            environment=block.task_environment(i),
            frames=list(block.task_frames(i)),
            service=block.service,
            parser=block.parser,
            capacity=block.capacity,
            error_hosts={
                h: [int(n), last] for h, (n, last) in block.task_error_hosts.get(i, {}).items()
            },
        )
    elif mode == "output":
        start = attempt or block.starts[i]
        if start < 1 or start > block.starts[i]:
            raise NotFound(
                f"task {i} of block '{block.name}' has {block.starts[i]} starts; no start {start}"
            )
        data["attempt"] = start
        text = outputs.read((job_id, block.index, i), start)
        data["output"] = text if text is not None else ""
    return data


# --- actions -------------------------------------------------------------------------------


def _allowed(refusal: str | None) -> None:
    if refusal is not None:
        raise Refused(refusal)


def action(
    farm: Farm,
    req: Any,
    caller: perms.Caller,
    now: float,
    policy: perms.Policy = perms.DEFAULT_POLICY,
) -> dict[str, Any]:
    """Validate, select the targets, check the caller's rights on them, then act."""
    req = check(req, ACTION, "action")
    op = req.get("operation")
    params = req.get("params")
    if not op and not params:
        raise Invalid("action", "needs an operation or params")
    what = req["type"]
    user_name = caller.user
    if what == "jobs":
        return job_action(farm, req, op, params, now, caller, policy)
    if what == "renders":
        renders = (
            farm.select_renders(req.get("names"), req.get("mask"))
            if (req.get("names") or req.get("mask"))
            else _renders_by_id(farm, req.get("ids"))
        )
        if op and op["type"] == "farm" and op.get("mode") not in ops.FARM_MODES:
            raise Invalid(
                "action.operation.mode", f"farm needs a mode: one of {', '.join(ops.FARM_MODES)}"
            )
        if op and op["type"] not in ops.RENDER_OPERATIONS:
            raise Invalid("action.operation.type", f"unknown render operation {op['type']!r}")
        _allowed(
            perms.render_action(
                caller, op["type"] if op else None, params, [(r.name, r.user_name) for r in renders]
            )
        )
        for render in renders:
            if op:
                ops.render_operation(farm, render, op["type"], user_name, now, op)
            if params:
                ops.render_params(farm, render, params, user_name, now)
        return _info(f"{len(renders)} render(s): {op['type'] if op else 'params'}", len(renders))
    if what == "pools":
        paths = req.get("names") or []
        if not paths:
            raise Invalid("action.names", "name the pools by path")
        for path in paths:
            if path not in farm.pools.by_path:
                raise NotFound(f"no pool '{path}'")
        if op and op["type"] not in ops.POOL_OPERATIONS:
            raise Invalid(
                "action.operation.type",
                f"unknown pool operation {op['type']!r}; one of {', '.join(ops.POOL_OPERATIONS)}",
            )
        _allowed(perms.pool_action(caller, op["type"] if op else "change params", paths))
        for path in paths:
            if op:
                ops.pool_operation(farm, path, op, user_name, now)
            if params:
                ops.pool_params(farm, path, params, now)
        return _info(f"{len(paths)} pool(s): {op['type'] if op else 'params'}", len(paths))
    users = [farm.users[n] for n in req.get("names", []) if n in farm.users]
    if len(users) != len(req.get("names", [])):
        raise NotFound(f"unknown user(s): {sorted(set(req.get('names', [])) - set(farm.users))}")
    if not params:
        raise Invalid("action.params", "user actions need params")
    _allowed(
        perms.user_action(caller, [u.name for u in users], params, policy.user_mod_his_priority)
    )
    for user in users:
        ops.user_params(farm, user, params, now)
    return _info(f"{len(users)} user(s): params", len(users))


def action_target(req: Any) -> tuple[str, str]:
    """The kind and the names of what an action is about, for the `logs` table; the action
    itself validates, so anything odd here is just shown as it came."""
    if not isinstance(req, dict):
        return "?", ""
    kind = str(req.get("type", "?"))[:64]
    for key in ("names", "ids", "mask"):
        value = req.get(key)
        if value:
            shown = value if isinstance(value, str) else ",".join(map(str, list(value)[:20]))
            return kind, f"{key}: {shown}"[:512]
    return kind, ""


def _renders_by_id(farm: Farm, ids: list[int] | None) -> list[Any]:
    if not ids:
        raise Invalid("action", "name the renders: ids, names or mask")
    missing = [i for i in ids if i not in farm.renders]
    if missing:
        raise NotFound(f"no render with id {missing[0]}")
    return [farm.renders[i] for i in ids]


APPENDS = ("append_blocks", "append_tasks")


def only_system(system: Job, mask: str, operation: str, caller: perms.Caller) -> None:
    """A mask that matches the system job alone (jdel '.*' on a farm without jobs): said as
    such, not as an admin refusal the caller would read as about their own jobs."""
    if operation == "delete":
        raise NotFound(
            f"no job matches '{mask}' but the system job '{system.name}', which is never deleted"
        )
    if not caller.admin:
        raise NotFound(
            f"no job matches '{mask}' but the system job '{system.name}' "
            f"(to {operation} it: afcmd --admin, naming it alone)"
        )


def job_action(
    farm: Farm,
    req: dict[str, Any],
    op: dict[str, Any] | None,
    params: dict[str, Any] | None,
    now: float,
    caller: perms.Caller,
    policy: perms.Policy = perms.DEFAULT_POLICY,
) -> dict[str, Any]:
    if req.get("ids") is None and req.get("mask") is None:
        raise Invalid("action", "name the jobs: ids or mask")
    if params and req.get("block_ids") is not None:
        # a block keeps the parameters it was submitted with: never the job's in its place
        raise Invalid("action.block_ids", "block parameters are not served: params set whole jobs")
    jobs = farm.select_jobs(req.get("ids"), req.get("mask"))
    if not jobs:
        raise NotFound("no job matches")
    system = farm.sysjob.job if farm.sysjob is not None else None
    # a mask that matches the system job among others ('.*') acts on the others and says so;
    # the system job is acted on by its id or a mask that matches it alone
    left_out = ""
    if req.get("ids") is None and system in jobs and len(jobs) > 1:
        jobs = [j for j in jobs if j is not system]
        left_out = f" (the system job '{system.name}' left out: name it alone to act on it)"
    elif req.get("ids") is None and jobs == [system]:
        only_system(system, req["mask"], op["type"] if op else "change", caller)
    _allowed(
        perms.job_action(
            caller,
            op["type"] if op else "change",
            jobs,
            system,
            params,
            policy.user_mod_job_priority,
        )
    )
    if params:
        for job in jobs:  # a bad mask is refused before any job changes
            ops.job_masks(job, params)
    block_ids = req.get("block_ids")
    if op and op["type"] in APPENDS:
        if len(jobs) != 1:  # one job at a time: a second one's refusal would leave half added
            raise Invalid("action.ids", f"{op['type']} adds to one job, {len(jobs)} match")
        if op["type"] == "append_blocks":
            added = append.append_blocks(farm, jobs[0], op.get("blocks"), now)
        else:
            added = append.append_tasks(farm, jobs[0], block_ids, op.get("tasks"), now)
        return _info(f"{op['type']}: {added} task(s) added to job {jobs[0].id}", added)
    if op:
        kind = op["type"]
        if block_ids is not None or op.get("task_ids") is not None:
            if kind not in ops.TASK_OPERATIONS:
                raise Invalid(
                    "action.operation.type",
                    f"unknown task operation {kind!r}; one of {', '.join(ops.TASK_OPERATIONS)}",
                )
            changed = 0
            for job in jobs:
                if ops.system_operation(farm, job, _blocks(job, block_ids), kind, now):
                    continue
                for block in _blocks(job, block_ids):
                    changed += ops.task_operation(farm, job, block, op.get("task_ids"), kind, now)
                job.add_log(now, f"tasks {kind}: {changed}")
                farm.refresh_job(job, now)
            farm.solve_needed = True
            return _info(f"{kind}: {changed} task(s){left_out}", changed)
        if kind not in ops.JOB_OPERATIONS:
            raise Invalid(
                "action.operation.type",
                f"unknown job operation {kind!r}; one of {', '.join(ops.JOB_OPERATIONS)}",
            )
        for job in jobs:
            ops.job_operation(farm, job, kind, now)
    if params:
        for job in jobs:
            ops.job_params(farm, job, params, now)
    names = ", ".join(f"{j.id} '{j.name}'" for j in jobs[:10]) + (" …" if len(jobs) > 10 else "")
    return _info(f"{op['type'] if op else 'params'}: {names}{left_out}", len(jobs))


def _info(text: str, count: int) -> dict[str, Any]:
    return {"info": {"kind": "log", "text": text}, "count": count}
