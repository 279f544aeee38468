"""Solving: hand ready tasks to renders (SPEC B §4). Plain code over farm objects, time passed in.

Each rule is a function that returns ``None`` when it allows, or a reason in plain words
when it does not; the solver stops at the first reason, ``why`` collects them all. One
solve starts tasks until no job can start another: jobs that found nothing are set aside
for the rest of the pass, renders leave the list when they are full.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from postcmd import commands as postcmd
from workers.scheduler import runs
from workers.scheduler.masks import pools_allow, pools_priority
from workers.scheduler.ranking import Levels, Ranked, ReadyRenders
from workers.scheduler.renders import Render, RenderFlag
from workers.scheduler.states import State
from workers.scheduler.users import User

if TYPE_CHECKING:
    from workers.scheduler.branches import Branch
    from workers.scheduler.farm import Farm
    from workers.scheduler.jobs import Block, Job

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
        held = postcmd.why_not_ready(job)
        if held:
            return held
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
    flags = r.flags
    if not job.ignorenimby:
        if flags & RenderFlag.NBY:
            return "render is NIMBY"
        if flags & RenderFlag.NbY and r.user_name != job.user_name:
            return f"render is nimby (only {r.user_name or 'its owner'}'s jobs)"
    if flags & RenderFlag.PAU and not job.ignorepaused:
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


def min_task_capacity(jobs: Iterable[Job]) -> float:
    """The least capacity any task of any job needs (a bound: lower is always safe)."""
    return min((block_capacity(b) for job in jobs for b in job.blocks), default=float("inf"))


# --- solving -------------------------------------------------------------------------------


class Solver:
    """Keeps the ready renders between solves (ranking.ReadyRenders); the farm says which
    renders changed (``touched_renders``) or that any may have (``renders_rescan``).

    With ``keep_ranking`` it keeps the job tree's levels too (ranking.Ranked): the farm says
    which jobs started or ended tasks (``ranks_moved``: they and the nodes above them move)
    or that anything else may have changed (``ranking_stale``: the levels are built again).
    Ranking 1,000 jobs afresh took ~1.5 ms a solve, a solve every 25 starts."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm
        self.ready = ReadyRenders()
        self._fresh = True
        # (render id, service) -> the render takes it; for one solve (see _serves)
        self.serves: dict[tuple[int, str], bool] = {}
        self.levels = Levels()  # kept between solves (keep_ranking)
        self._every = False  # the levels being built hold every node (kept ones do)

    def _refresh_ready(self) -> None:
        farm = self.farm
        if self._fresh or farm.renders_rescan or farm.min_task_capacity < self.ready.min_free:
            # a new job with smaller tasks may fit renders the index left out: look again
            self.ready.facts = {}
            farm.min_task_capacity = min_task_capacity(farm.jobs.values())
            self.ready.min_free = farm.min_task_capacity
            self.ready.rebuild(farm.pools, farm.renders.values())
            self._fresh = farm.renders_rescan = False
        else:
            for render_id in farm.touched_renders:
                r = farm.renders.get(render_id)
                if r is None:
                    self.ready.discard(render_id)
                else:
                    self.ready.look(farm.pools, r)
        farm.touched_renders.clear()

    def solve(
        self,
        now: float,
        max_starts: int | None = None,
        only: set[int] | None = None,
        keep_ranking: bool = False,
    ) -> list[tuple[Render, dict[str, Any]]]:
        """Start tasks until nothing more can start; returns (render, task exec) pairs to send.
        `only`: the jobs that may have something to start (Farm.solve_new); None: any.
        `keep_ranking`: use and keep the levels of the last solves (see the class)."""
        farm = self.farm
        self._refresh_ready()
        self.serves.clear()
        started: list[tuple[Render, dict[str, Any]]] = []
        exhausted: set[int] = set() if only is None else set(farm.jobs).difference(only)
        kept = keep_ranking and only is None
        levels = self._kept_levels() if kept else Levels()
        if not keep_ranking:
            self.levels = Levels()
            farm.ranks_moved.clear()
        self._every = kept
        while self.ready and (max_starts is None or len(started) < max_starts):
            if self.ready.max_free() < farm.min_task_capacity:
                break  # no ready render has room for the smallest task of any job
            start = self.solve_branch(farm.branches.root, exhausted, now, levels)
            if start is None:
                break
            started.append((start.render, runs.start(farm, start, now)))
            self.ready.look(farm.pools, start.render)
            self._moved(start.job, levels)
        if kept:
            farm.ranks_moved.clear()  # the starts of this solve moved as they were made
        return started

    def _kept_levels(self) -> Levels:
        """The levels of the last solves, moved for the runs that started or ended since;
        none when anything else may have changed."""
        farm = self.farm
        if farm.ranking_stale:
            self.levels = Levels()
            farm.ranking_stale = False
        levels = self.levels
        for level in levels.values():
            level.begin()
        if levels:
            for job_id in farm.ranks_moved:
                job = farm.jobs.get(job_id)
                if job is not None:
                    self._moved(job, levels)
        farm.ranks_moved.clear()
        return levels

    def _moved(self, job: Job, levels: Levels) -> None:
        """A start or an end changed the need of the job and of everything above it: move
        them. Its user moves in every level of users it is in (Levels.users)."""
        branch = job.branch_node
        level = levels.get(id(branch) if branch.solve_jobs else (id(branch), id(job.user)))
        if level is not None:
            level.move(job)
        for level in levels.users.get(id(job.user), ()):
            level.move(job.user)
        while branch.parent is not None:
            level = levels.get(id(branch.parent))
            if level is not None:
                level.move(branch)
            branch = branch.parent

    def _branch_level(self, branch: Branch, exhausted: set[int], now: float) -> Ranked:
        by_tasks = branch.solve_need == "solve_tasksnum"
        priority = branch.solve_method == "solve_priority"

        def running(node: Any) -> int:
            return node.running_tasks if by_tasks else node.running_capacity

        def user_running(user: User) -> int:
            counts = branch.user_running_tasks if by_tasks else branch.user_running_capacity
            return counts[user.name]

        def key(node: Any) -> tuple[Any, ...]:
            if isinstance(node, User):
                if priority:
                    return (-need(node.priority, user_running(node)), node.time_solved)
                return (-node.priority, node.time_register, node.time_solved)
            if priority:
                return (-need(node.priority, running(node)), node.time_solved)
            return (-node.priority, node.time_creation, node.time_solved)

        # A done job starts nothing until an action restarts it, and an action builds the
        # levels again: done jobs are kept for days, and would head every level (no runs).
        nodes: list[Any] = list(branch.children)
        if branch.solve_jobs:
            nodes += [
                j for j in branch.jobs if not j.done and (self._every or j.id not in exhausted)
            ]
        else:
            # users in the order of their first job, of any state: a tie in need goes the
            # same way in a level built for one solve and in one kept from solve to solve
            users: dict[int, User] = {}
            wanted: set[int] = set()
            for job in branch.jobs:
                users.setdefault(id(job.user), job.user)
                if job.done:
                    continue
                if self._every or job.id not in exhausted and job_cannot_run(job, now) is None:
                    wanted.add(id(job.user))
            nodes += [u for k, u in users.items() if k in wanted]
        return Ranked(key).build(nodes)

    def _eligible(self, node: Any, exhausted: set[int], now: float) -> bool:
        if isinstance(node, User):
            return True  # its jobs are looked at one by one
        if hasattr(node, "blocks"):
            return node.id not in exhausted and job_cannot_run(node, now) is None
        return not (
            node.paused
            or not node.jobs
            or rate_reached(node, now)
            or 0 <= node.max_running_tasks <= node.running_tasks
        )

    def solve_branch(
        self, branch: Branch, exhausted: set[int], now: float, levels: Levels
    ) -> Start | None:
        level = levels.get(id(branch))
        if level is None:
            level = levels[id(branch)] = self._branch_level(branch, exhausted, now)
            if not branch.solve_jobs:
                levels.add_users(level, [e[2] for e in level.order if isinstance(e[2], User)])
        while (node := level.head()) is not None:
            if not self._eligible(node, exhausted, now):
                # starts only use limits up: what cannot run now cannot later in this solve
                level.pass_head()
                continue
            if isinstance(node, User):
                start = self.solve_user(branch, node, exhausted, now, levels)
            elif hasattr(node, "blocks"):
                start = self.solve_job(node, exhausted)
            else:
                start = self.solve_branch(node, exhausted, now, levels)
            if start is not None:
                branch.time_solved = now
                return start
            level.pass_head()  # nothing under it could start a task on any ready render
        return None

    def solve_user(
        self,
        branch: Branch,
        user: User,
        exhausted: set[int],
        now: float,
        levels: Levels,
    ) -> Start | None:
        key = (id(branch), id(user))
        level = levels.get(key)
        if level is None:
            jobs = [
                j
                for j in branch.jobs
                if j.user is user and not j.done and (self._every or j.id not in exhausted)
            ]
            if user.solve_method == "solve_priority":
                by_tasks = user.solve_need == "solve_tasksnum"
                level = Ranked(
                    lambda j: (
                        -need(j.priority, j.running_tasks if by_tasks else j.running_capacity),
                        j.time_solved,
                    )
                )
            else:
                place = {id(j): n for n, j in enumerate(user.jobs)}
                level = Ranked(lambda j: (place.get(id(j), 0),))
            level = levels[key] = level.build(jobs)
        while (job := level.head()) is not None:
            if job.id in exhausted or job_cannot_run(job, now) is not None:
                level.pass_head()
                continue
            start = self.solve_job(job, exhausted)
            if start is not None:
                user.time_solved = now
                return start
            level.pass_head()
        return None

    def solve_job(self, job: Job, exhausted: set[int]) -> Start | None:
        farm = self.farm
        blocks = [b for b in job.blocks if block_cannot_run(b) is None]
        # no ready render has room for the smallest task: the job need not look at them
        if blocks and min(block_capacity(b) for b in blocks) <= self.ready.max_free():
            for r in self._renders_for(job, {b.service for b in blocks}):
                if job_not_on_render(farm, job, r) is not None:
                    continue
                spent = []
                for block in blocks:
                    if block_not_on_render(farm, block, job, r) is not None:
                        continue
                    i = pick_task(farm, block, job, r)
                    if i is not None:
                        return Start(job, block, i, r, self._capacity(block, r))
                    if not job.maintenance and not block.task_error_hosts:
                        spent.append(block)  # no task of it can start on any render now
                if spent:
                    blocks = [b for b in blocks if b not in spent]
                    if not blocks:
                        break
        exhausted.add(job.id)
        return None

    def _serves(self, r: Render, services: set[str]) -> bool:
        """Whether the render takes any of these services, asked once per render and service
        in a solve: the system job's executors take only their own services and are always
        ready, so every job that found no other render would ask them, solve after solve."""
        serves = self.serves
        for service in services:
            ok = serves.get((r.id, service))
            if ok is None:
                ok = serves[r.id, service] = self.farm.pools.service_refused(r, service) is None
            if ok:
                return True
        return False

    def _renders_for(self, job: Job, services: set[str]) -> Iterator[Render]:
        """Ready renders that take one of the services, most ready first; a job with pools
        of its own orders them itself.

        A render whose place is out of date (it changed in a way nobody told the farm
        about) is passed over here and put right after."""
        farm = self.farm
        ready = self.ready
        stale: list[int] = []
        try:
            keys: Iterable[tuple[Any, ...]] = ready.order
            if job.pools:
                keys = sorted(ready.order, key=lambda k: self._job_key(job, k))
            for key in keys:
                r = farm.renders.get(key[-1])
                if r is not None and not self._serves(r, services):
                    continue
                if r is None or ready.key(farm.pools, r) != key:
                    stale.append(key[-1])
                    continue
                yield r
        finally:
            for render_id in stale:
                r = farm.renders.get(render_id)
                if r is None:
                    ready.discard(render_id)
                else:
                    ready.look(farm.pools, r)

    def _job_key(self, job: Job, key: tuple[Any, ...]) -> tuple[Any, ...]:
        """A ready render's place with the job's own pool priorities added."""
        r = self.farm.renders.get(key[-1])
        bonus = pools_priority(job.pools, r.pool) if r is not None else 0
        return (key[0] - bonus, *key[1:])

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
