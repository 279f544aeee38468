"""Solving: hand ready tasks to renders (SPEC B §4). Plain code over farm objects, time passed in.

Each rule is a function that returns ``None`` when it allows, or a reason in plain words
when it does not; the solver stops at the first reason, ``why`` collects them all. One
solve starts tasks until no job can start another: jobs that found nothing are set aside
for the rest of the pass, renders leave the list when they are full.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workers.scheduler import runs
from workers.scheduler.masks import pools_allow, pools_priority
from workers.scheduler.renders import Render, RenderFlag
from workers.scheduler.states import State

if TYPE_CHECKING:
    from workers.scheduler.branches import Branch
    from workers.scheduler.farm import Farm
    from workers.scheduler.jobs import Block, Job
    from workers.scheduler.users import User

_VARCAPACITY = 1 << 1
_NOT_READY = RenderFlag.SIC | RenderFlag.WFL
TASK_SCAN_MAX = 10_000  # tasks looked at per block and render before giving up on the block


@dataclass(slots=True)
class Start:
    job: Job
    block: Block
    task: int
    render: Render
    capacity: int


def need(priority: int, running: int) -> float:
    return 1.1**priority / (running + 1)


def rate_reached(node: Any, now: float) -> bool:
    """max_tasks_per_second as a limit over the current second (-1: none)."""
    limit = node.max_tasks_per_second
    if limit < 0:
        return False
    if limit == 0:
        return True
    return node.tps[0] == int(now) and node.tps[1] >= limit


# --- rules ---------------------------------------------------------------------------------


def render_not_ready(farm: Farm, r: Render) -> str | None:
    if not r.online:
        return "render offline"
    if r.flags & _NOT_READY:
        return "render sick" if r.flags & RenderFlag.SIC else "render falling asleep"
    if r.priority <= 0:
        return "render priority 0"
    pool = farm.pools.not_ready(r.pool)
    if pool:
        return pool
    capacity = farm.pools.capacity(r)
    if 0 <= capacity <= r.capacity_used:
        return "render busy: no free capacity"
    if len(r.tasks) >= farm.pools.max_tasks(r):
        return "render busy: max tasks running"
    return None


def job_cannot_run(job: Job, now: float) -> str | None:
    if job.deleting:
        return "being deleted"
    if job.paused:
        return "paused (OFF)"
    if job.priority <= 0:
        return "priority 0"
    state = job.state
    if not state & State.RDY:
        if state & State.WTM:
            return f"waiting until time_wait {job.time_wait:.0f}"
        if job.pre_failed:
            return "its command_pre failed (see the job log)"
        if job.waiting_pre:
            return "waiting for its command_pre to run"
        if state & State.WDP:
            return "waiting for dependencies"
        if state & State.DON:
            return "done"
        return "no ready tasks" + (" (some failed: ERR)" if state & State.ERR else "")
    if 0 <= job.max_running_tasks <= job.running_tasks:
        return f"max_running_tasks {job.max_running_tasks} reached"
    if rate_reached(job, now):
        return "max_tasks_per_second reached"
    return user_cannot_run(job.user)


def user_cannot_run(user: User) -> str | None:
    if user.paused:
        return f"user {user.name} paused"
    if user.priority <= 0:
        return f"user {user.name} priority 0"
    if 0 <= user.max_running_tasks <= user.running_tasks:
        return f"user {user.name} max_running_tasks {user.max_running_tasks} reached"
    return None


def job_not_on_render(farm: Farm, job: Job, r: Render) -> str | None:
    """canRunOn for the job as a whole (its blocks are checked one by one after)."""
    if 0 <= job.max_running_tasks_per_host <= job.running_per_render[r.id]:
        return f"max_running_tasks_per_host {job.max_running_tasks_per_host} reached on the render"
    user = job.user
    if 0 <= user.max_running_tasks_per_host <= user.running_per_render[r.id]:
        return f"user max_running_tasks_per_host {user.max_running_tasks_per_host} reached"
    if job.hosts_mask is not None and not job.hosts_mask.match(r.name):
        return f"hosts_mask '{job.hosts_mask.pattern}' does not match"
    if job.hosts_mask_exclude is not None and job.hosts_mask_exclude.excludes(r.name):
        return f"hosts_mask_exclude '{job.hosts_mask_exclude.pattern}' matches"
    if job.need_os is not None and not job.need_os.match(r.os):
        return f"need_os '{job.need_os.pattern}' not in render os '{r.os}'"
    if job.need_properties is not None and not job.need_properties.match(farm.pools.properties(r)):
        return f"need_properties '{job.need_properties.pattern}' not met"
    if job.need_power > 0 and farm.pools.power(r) < job.need_power:
        return f"need_power {job.need_power} > render power {farm.pools.power(r)}"
    if job.need_memory > 0 and r.host_resources.get("mem_free_mb", 0) < job.need_memory:
        return (
            f"need_memory {job.need_memory} MB > free {r.host_resources.get('mem_free_mb', 0)} MB"
        )
    if job.need_hdd > 0 and r.host_resources.get("hdd_free_gb", 0) < job.need_hdd:
        return f"need_hdd {job.need_hdd} GB > free {r.host_resources.get('hdd_free_gb', 0)} GB"
    if job.pools and not pools_allow(job.pools, r.pool):
        return f"pools {job.pools} exclude pool {r.pool}"
    if not job.ignorenimby:
        if r.flags & RenderFlag.NBY:
            return "render is NIMBY"
        if r.flags & RenderFlag.NbY and r.user_name != job.user_name:
            return f"render is nimby (only {r.user_name or 'its owner'}'s jobs)"
    if r.flags & RenderFlag.PAU and not job.ignorepaused:
        return "render is paused"
    return None


def block_cannot_run(block: Block) -> str | None:
    if not block.state & State.RDY:
        return "waiting for dependencies" if block.state & State.WDP else "no ready tasks"
    if 0 <= block.max_running_tasks <= len(block.running):
        return f"max_running_tasks {block.max_running_tasks} reached"
    return None


def block_capacity(block: Block) -> int:
    """Capacity a task needs at least (variable capacity may take less, down to coeff_min)."""
    if block.flags & _VARCAPACITY and block.capacity_coeff_min > 0:
        return max(1, int(block.capacity * block.capacity_coeff_min))
    return block.capacity


def block_not_on_render(farm: Farm, block: Block, job: Job, r: Render) -> str | None:
    if 0 <= block.max_running_tasks_per_host <= block.running_per_render[r.id]:
        return f"block max_running_tasks_per_host {block.max_running_tasks_per_host} reached"
    capacity = farm.pools.capacity(r)
    if capacity >= 0:
        free = capacity - r.capacity_used
        needed = block_capacity(block)
        if free < needed:
            return f"needs capacity {needed}, render has {free} free of {capacity}"
    service = farm.pools.service_refused(r, block.service)
    if service:
        return service
    for name, count in block.tickets.items():
        free_tickets = farm.pools.tickets_free(r, name)
        if free_tickets is not None and free_tickets < count:
            return f"ticket {name}: needs {count}, {free_tickets} free"
    limit = block.errors_avoid_host if block.errors_avoid_host >= 0 else job.user.errors_avoid_host
    errors = block.error_hosts.get(r.name)
    if errors is not None and limit > 0 and errors[0] >= limit:
        return f"host avoided after {int(errors[0])} errors"
    if block.hosts_mask is not None and not block.hosts_mask.match(r.name):
        return f"block hosts_mask '{block.hosts_mask.pattern}' does not match"
    if block.hosts_mask_exclude is not None and block.hosts_mask_exclude.excludes(r.name):
        return f"block hosts_mask_exclude '{block.hosts_mask_exclude.pattern}' matches"
    if block.need_properties is not None and not block.need_properties.match(
        farm.pools.properties(r)
    ):
        return f"block need_properties '{block.need_properties.pattern}' not met"
    res = r.host_resources
    if block.need_memory > 0 and res.get("mem_free_mb", 0) < block.need_memory:
        return f"block need_memory {block.need_memory} MB > free {res.get('mem_free_mb', 0)} MB"
    if block.need_hdd > 0 and res.get("hdd_free_gb", 0) < block.need_hdd:
        return f"block need_hdd {block.need_hdd} GB > free {res.get('hdd_free_gb', 0)} GB"
    if block.need_power > 0 and farm.pools.power(r) < block.need_power:
        return f"block need_power {block.need_power} > render power {farm.pools.power(r)}"
    cores = res.get("cpu_num", 0)
    if block.need_cpu_cores > 0 and cores < block.need_cpu_cores:
        return f"need_cpu_cores {block.need_cpu_cores} > {cores}"
    mhz = res.get("cpu_mhz", 0)
    if block.need_cpu_freq_mgz > 0 and mhz < block.need_cpu_freq_mgz:
        return f"need_cpu_freq_mgz {block.need_cpu_freq_mgz} > {mhz}"
    if block.need_cpu_freq_cores > 0 and mhz * cores < block.need_cpu_freq_cores:
        return f"need_cpu_freq_cores {block.need_cpu_freq_cores} > {mhz * cores}"
    gpu_free = res.get("gpu_mem_total_mb", 0) - res.get("gpu_mem_used_mb", 0)
    if block.need_gpu_mem_mb > 0 and gpu_free < block.need_gpu_mem_mb:
        return f"need_gpu_mem_mb {block.need_gpu_mem_mb} > free {gpu_free}"
    return None


def task_avoids(block: Block, job: Job, i: int, host: str) -> bool:
    hosts = block.task_error_hosts.get(i)
    if not hosts or host not in hosts:
        return False
    limit = (
        block.errors_task_same_host
        if block.errors_task_same_host >= 0
        else job.user.errors_task_same_host
    )
    return limit > 0 and hosts[host][0] >= limit


def pick_task(farm: Farm, block: Block, job: Job, r: Render) -> int | None:
    """The first ready task in pick order whose dependencies are done; None if it avoids r."""
    states = block.states
    for scanned, i in enumerate(block.order()):
        if scanned >= TASK_SCAN_MAX:
            return None
        if not states[i] & State.RDY:
            continue
        if block.tasks_depend_mask is not None and not job.task_depends_done(block, i):
            continue
        if job.maintenance and block.task_name(i) != r.name:
            continue
        return None if task_avoids(block, job, i, r.name) else i
    return None


# --- solving -------------------------------------------------------------------------------


class Solver:
    def __init__(self, farm: Farm) -> None:
        self.farm = farm

    def solve(
        self, now: float, max_starts: int | None = None
    ) -> list[tuple[Render, dict[str, Any]]]:
        """Start tasks until nothing more can start; returns (render, task exec) pairs to send."""
        farm = self.farm
        renders = [r for r in farm.renders.values() if render_not_ready(farm, r) is None]
        started: list[tuple[Render, dict[str, Any]]] = []
        exhausted: set[int] = set()
        while renders and (max_starts is None or len(started) < max_starts):
            start = self.solve_branch(farm.branches.root, renders, exhausted, now)
            if start is None:
                break
            started.append((start.render, runs.start(farm, start, now)))
            if render_not_ready(farm, start.render) is not None:
                renders.remove(start.render)
        return started

    def solve_branch(
        self, branch: Branch, renders: list[Render], exhausted: set[int], now: float
    ) -> Start | None:
        by_tasks = branch.solve_need == "solve_tasksnum"
        candidates: list[tuple[Any, ...]] = []
        for child in branch.children:
            if child.paused or not child.jobs or rate_reached(child, now):
                continue
            if 0 <= child.max_running_tasks <= child.running_tasks:
                continue
            running = child.running_tasks if by_tasks else child.running_capacity
            candidates.append(
                (child, need(child.priority, running), child.time_solved, child.time_creation)
            )
        if branch.solve_jobs:
            for job in branch.jobs:
                if job.id in exhausted or job_cannot_run(job, now) is not None:
                    continue
                running = job.running_tasks if by_tasks else job.running_capacity
                candidates.append(
                    (job, need(job.priority, running), job.time_solved, job.time_creation)
                )
        else:
            for user, jobs in self._users_of(branch, exhausted, now).items():
                running = (
                    branch.user_running_tasks[user.name]
                    if by_tasks
                    else branch.user_running_capacity[user.name]
                )
                candidates.append(
                    (
                        (user, jobs),
                        need(user.priority, running),
                        user.time_solved,
                        user.time_register,
                    )
                )
        candidates.sort(
            key=_priority_key if branch.solve_method == "solve_priority" else _order_key
        )
        for node, *_ in candidates:
            if isinstance(node, tuple):
                start = self.solve_user(node[0], node[1], renders, exhausted, now)
            elif hasattr(node, "blocks"):
                start = self.solve_job(node, renders, exhausted)
            else:
                start = self.solve_branch(node, renders, exhausted, now)
            if start is not None:
                branch.time_solved = now
                return start
        return None

    def _users_of(self, branch: Branch, exhausted: set[int], now: float) -> dict[User, list[Job]]:
        users: dict[User, list[Job]] = {}
        for job in branch.jobs:
            if job.id not in exhausted and job_cannot_run(job, now) is None:
                users.setdefault(job.user, []).append(job)
        return users

    def solve_user(
        self, user: User, jobs: list[Job], renders: list[Render], exhausted: set[int], now: float
    ) -> Start | None:
        if user.solve_method == "solve_priority":
            by_tasks = user.solve_need == "solve_tasksnum"
            jobs = sorted(
                jobs,
                key=lambda j: (
                    -need(j.priority, j.running_tasks if by_tasks else j.running_capacity),
                    j.time_solved,
                ),
            )
        else:
            order = {id(j): n for n, j in enumerate(user.jobs)}
            jobs = sorted(jobs, key=lambda j: order.get(id(j), 0))
        for job in jobs:
            start = self.solve_job(job, renders, exhausted)
            if start is not None:
                user.time_solved = now
                return start
        return None

    def solve_job(self, job: Job, renders: Iterable[Render], exhausted: set[int]) -> Start | None:
        farm = self.farm
        usable = [r for r in renders if job_not_on_render(farm, job, r) is None]
        usable.sort(key=lambda r: self._render_key(job, r))
        blocks = [b for b in job.blocks if block_cannot_run(b) is None]
        for r in usable:
            for block in blocks:
                if block_not_on_render(farm, block, job, r) is not None:
                    continue
                i = pick_task(farm, block, job, r)
                if i is not None:
                    return Start(job, block, i, r, self._capacity(block, r))
        exhausted.add(job.id)
        return None

    def _render_key(self, job: Job, r: Render) -> tuple[Any, ...]:
        """Most ready first (the original's MostReadyRender)."""
        farm = self.farm
        capacity = farm.pools.capacity(r)
        return (
            -(
                farm.pools.priority(r.pool)
                + (pools_priority(job.pools, r.pool) if job.pools else 0)
            ),
            len(r.tasks),
            -(capacity - r.capacity_used),
            -r.priority,
            r.task_start_finish_time,
            -capacity,
            -farm.pools.max_tasks(r),
            r.name,
        )

    def _capacity(self, block: Block, r: Render) -> int:
        """Variable capacity: free capacity clamped to [coeff_min, coeff_max] × block capacity."""
        if not block.flags & _VARCAPACITY:
            return block.capacity
        capacity = self.farm.pools.capacity(r)
        if capacity < 0:
            return block.capacity
        free = capacity - r.capacity_used
        low = (
            block.capacity * block.capacity_coeff_min
            if block.capacity_coeff_min > 0
            else block.capacity
        )
        high = block.capacity * block.capacity_coeff_max if block.capacity_coeff_max > 0 else free
        return int(max(low, min(high, free)))


def _priority_key(c: tuple[Any, ...]) -> tuple[Any, ...]:
    return (-c[1], c[2])


def _order_key(c: tuple[Any, ...]) -> tuple[Any, ...]:
    node = c[0][0] if isinstance(c[0], tuple) else c[0]
    return (-node.priority, c[3], c[2])
