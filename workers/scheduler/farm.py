"""The farm: sole owner of scheduler state (renders, pools, users, jobs, branches) and indexes.

Only the scheduler's loop thread calls into it. Every method takes ``now`` (wall-clock
seconds); nothing here reads the clock, touches a socket or writes a file. Changes that must
reach the store are collected in ``dirty_*`` sets and flushed by the loop.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from broker.patterns import Pattern, compile_pattern
from broker.validate import Invalid
from events import payload
from events.payload import has_custom
from events.types import Event
from postcmd import commands as postcmd
from stats.rows import job_rows as stats_job_rows
from stats.rows import log_row as stats_log_row
from workers.scheduler import checks, errors, runs
from workers.scheduler.branches import Branches
from workers.scheduler.jobs import Block, Job
from workers.scheduler.metrics import Timings
from workers.scheduler.pools import Builtins, Pools
from workers.scheduler.refresh import job_state
from workers.scheduler.renders import Render, RenderFlag
from workers.scheduler.solver import min_task_capacity
from workers.scheduler.states import ERROR_STATUSES, FINAL_STATUSES, SUCCESS_STATUSES, State
from workers.scheduler.submit import build_job
from workers.scheduler.systemjob import (
    EVENTS,
    POST_COMMANDS,
    SYSTEM_JOB_ID,
    SYSTEM_USER,
    Command,
    SystemJob,
    submission,
)
from workers.scheduler.users import User

FIRST_JOB_ID = 2  # id 1 belongs to the system job
Key = tuple[int, int, int]


@dataclass(slots=True)
class ReportResult:
    """What the render is told after its task reports, and what the loop must write."""

    close: list[list[int]] = field(default_factory=list)
    stop: list[list[int]] = field(default_factory=list)
    finished: list[runs.Finished] = field(default_factory=list)
    output: list[tuple[Key, int, bytes]] = field(default_factory=list)  # chunks to append
    full_output: list[tuple[Key, int, bytes]] = field(default_factory=list)  # cut copies to store


class Refused(Exception):
    """A valid request the farm will not carry out now; the text says why."""


class NotFound(Exception):
    pass


@dataclass(slots=True)
class Registration:
    """What a render told us when it registered (already validated)."""

    name: str
    user_name: str = ""
    os: str = ""
    engine: str = ""
    address: str = ""
    host: dict[str, Any] = field(default_factory=dict)
    host_resources: dict[str, Any] = field(default_factory=dict)
    netifs: list[dict[str, Any]] = field(default_factory=list)
    time_launch: float = 0.0
    services: list[str] | None = None  # None: as the server has them
    capacity_host: int = -1
    max_tasks_host: int = -1


class Farm:
    def __init__(
        self, builtins: Builtins, now: float, user_defaults: dict[str, Any] | None = None
    ) -> None:
        self.pools = Pools(builtins, now)
        self.branches = Branches(now)
        self.user_defaults = user_defaults or {}
        self.progress_timeout = -1  # af_task_progress_change_timeout
        self.jobs: dict[int, Job] = {}
        self.job_by_name: dict[str, Job] = {}
        self._next_job_id = FIRST_JOB_ID
        self.solve_needed = True  # anything may start: every job looks at the ready renders
        # Jobs that became ready since the last solve. Nothing else changed if solve_needed
        # is False: the other jobs found nothing to start last time and still cannot, so
        # only these need to look (a submission does not make 10,000 jobs look again).
        self.solve_new: set[int] = set()
        self.deleted_jobs: list[Job] = []  # removed since the loop last looked (store, outputs)
        self.dirty_jobs: set[int] = set()  # job rows to store
        self.removed_job_ids: list[int] = []  # jobs to drop from the store
        self.dirty_blocks: set[Block] = set()  # blocks with task changes to store
        self.redefined_blocks: set[Block] = set()  # appended to: stored whole, definition too
        # running tasks whose percent changed: monitors only (the store keeps no percent), so
        # a page's bar moves before a task finishes; cleared by every monitor push
        self.progressed: dict[Block, set[int]] = {}
        self.closes: dict[int, list[list[int]]] = {}  # finals to acknowledge once committed
        self.wrc: dict[Key, float] = {}  # tasks running at the last stop: deadline for their render
        # the same tasks by the render they wait for, so that one registering looks at its own
        # only (10,000 renders back after a restart: not 10,000 x every waiting task)
        self.wrc_hosts: dict[str, set[Key]] = {}
        # Done jobs after a restart stay in the store until something asks for them.
        self.sysjob: SystemJob | None = None
        self.cold: dict[int, str] = {}  # id -> name
        # (user, idempotency key) -> job id, for the jobs on the farm: a retried submission
        # gets its first reply back instead of a second job
        self.submissions: dict[tuple[str, str], int] = {}
        self.cold_names: dict[str, int] = {}
        self.thaw_loader: Any = None  # id -> Job | None, set by the store side
        self.reconnect_timeout = 30.0  # af_task_reconnect_timeout
        self.overflow = (-1.0, -1.0, -1.0)  # af_render_overflow_mem, _swap, _hdd (free %)
        self.sleeps: list[Render] = []  # renders to tell to sleep
        self.stats_rows: list[tuple[str, dict[str, Any]]] = []  # for the statistics database
        self.wolwake_cmd = "wolwake"  # af_render_cmd_wolwake
        self.stops: list[tuple[Render, list[int]]] = []  # stop requests to push to renders
        self.exits: list[Render] = []  # renders asked to exit
        self.deleted_renders: list[int] = []  # for the store
        self.dirty_pools: set[str] = set()
        self.deleted_pools: list[str] = []
        self.config_changed: list[Render] = []  # renders to send their new pool timing
        self.renders: dict[int, Render] = {}
        # for the solver's ready-render index: renders that changed since it last looked, or
        # True when anything may have (an action, the periodic refresh)
        self.touched_renders: set[int] = set()
        self.renders_rescan = True
        # for the solver's kept ranking of jobs: jobs whose running counts changed, or True
        # when anything else may have (a request, a periodic check, a job added or removed)
        self.ranks_moved: set[int] = set()
        self.ranking_stale = True
        # the least capacity a task of any job needs: lowered as jobs come, recomputed by the
        # solver at a rescan (a bound that may be low, never high)
        self.min_task_capacity: float = float("inf")
        self.render_by_name: dict[str, Render] = {}
        self.users: dict[str, User] = {}
        self.dirty_renders: set[int] = set()
        self.dirty_users: set[str] = set()  # by name
        self.counters: Counter[str] = Counter()
        self.timings = Timings()  # solve, commit and dispatch histograms, for /metrics
        self._next_render_id = 1
        self._next_user_id = 1

    def log_row(self, now: float, subject: str, kind: str, obj: str, info: str) -> None:
        """A line for the statistics `logs` table (actions, registrations, server start/stop)."""
        self.stats_rows.append(("logs", stats_log_row(now, subject, kind, obj, info)))

    # --- restore -------------------------------------------------------------------------

    def restore(self, renders: list[dict[str, Any]], users: list[dict[str, Any]]) -> None:
        """Load stored nodes. Renders come back offline until they register again."""
        for data in renders:
            render = Render.from_settings(data)
            self._add_render(render)
        for data in users:
            user = User.from_json(data)
            self.users[user.name] = user
            self._next_user_id = max(self._next_user_id, user.id + 1)

    def _add_render(self, render: Render) -> None:
        self.renders[render.id] = render
        self.render_by_name[render.name] = render
        self.pools.by_path.get(render.pool, self.pools.by_path["/"]).renders.add(render.id)
        # Ids are never reused: a new render gets one above every id ever stored.
        self._next_render_id = max(self._next_render_id, render.id + 1)

    # --- renders -------------------------------------------------------------------------

    def register_render(self, identity: bytes, reg: Registration, now: float) -> Render:
        """A render comes online. A known name keeps its id, pool and settings."""
        render = self.render_by_name.get(reg.name)
        if render is not None and render.online and render.identity != identity:
            self.counters["registrations_refused"] += 1
            render.add_log(
                now, f"refused a second afrender named {reg.name} from {reg.address or '?'}"
            )
            raise Refused(
                f"a render named '{reg.name}' is already online (registered from "
                f"{render.address or '?'}); set another name with AF_HOSTNAME or --name, "
                "or stop the other afrender"
            )
        if render is None:
            pool = self.pools.assign(reg.name)
            render = Render(id=self._next_render_id, name=reg.name, pool=pool.path)
            if pool.new_nimby:
                render.flags |= RenderFlag.NbY
            if pool.new_paused:
                render.flags |= RenderFlag.PAU
            self._add_render(render)
            render.add_log(now, f"new render, in pool {pool.path}")
            self.counters["renders_created"] += 1
        render.user_name = reg.user_name
        render.os = reg.os
        render.engine = reg.engine
        render.address = reg.address
        render.host = reg.host
        render.host_resources = reg.host_resources
        if reg.host_resources:
            render.history.add(reg.host_resources, now)
        render.netifs = reg.netifs
        render.time_launch = reg.time_launch
        if reg.services is not None:
            render.services = list(reg.services)
        if reg.capacity_host >= 0 or reg.max_tasks_host >= 0:
            render.capacity_host, render.max_tasks_host = reg.capacity_host, reg.max_tasks_host
            render.flags |= RenderFlag.DRT
        if render.flags & RenderFlag.WWK:
            render.add_log(now, f"woke up (wake attempt {render.wake_attempts})")
        render.wake_attempts = 0
        render.go_online(identity, now)
        self.touched_renders.add(render.id)
        render.add_log(now, f"online from {reg.address or '?'} (afrender {reg.engine or '?'})")
        self.counters["registrations"] += 1
        self.dirty_renders.add(render.id)
        return render

    def render_of(self, identity: bytes, render_id: int) -> Render | None:
        """The online render this connection registered as, or None (it must register again)."""
        render = self.renders.get(render_id)
        if render is None or not render.online or render.identity != identity:
            return None
        return render

    def update_render(self, render: Render, resources: dict[str, Any] | None, now: float) -> None:
        render.time_update = now
        if resources:
            render.host_resources = resources
            render.history.add(resources, now)

    def deregister_render(self, render: Render, now: float) -> None:
        self._return_tasks(render, "render_deregister", now)
        render.go_offline(now)
        self.touched_renders.add(render.id)
        render.add_log(now, "offline: afrender exited (deregistered)")
        self.counters["deregistrations"] += 1
        self.dirty_renders.add(render.id)

    def check_zombies(self, now: float, renders: Iterable[Render] | None = None) -> list[Render]:
        """Online renders silent for longer than their pool's zombie_time go offline.
        `renders`: the part of the farm to look at (all by default)."""
        zombies = []
        per_pool = self.per_pool("zombie_time")
        for render in self.renders.values() if renders is None else renders:
            if not render.online:
                continue
            if now - render.time_update > per_pool(render.pool):
                if not render.flags & RenderFlag.WFL:  # asleep as asked is not dead (SPEC A7)
                    self.emit_render_event(render, Event.RENDER_ZOMBIE, now)
                self._return_tasks(render, "render_zombie", now)
                render.go_offline(now)
                self.touched_renders.add(render.id)
                render.add_log(
                    now, f"offline: zombie, no update for {now - render.time_update:.1f} s"
                )
                self.counters["zombies"] += 1
                self.dirty_renders.add(render.id)
                zombies.append(render)
        return zombies

    def render_error(self, render: Render, service: str, user: str, now: float) -> None:
        """Errors from `sick_errors_count` distinct users in a row make the render sick."""
        checks.record_error(render.sick_records, now, service, user)
        count = self.pools.inherited(render.pool, "sick_errors_count", default=0)
        if not render.flags & RenderFlag.SIC and checks.is_sick(render.sick_records, count):
            render.flags |= RenderFlag.SIC
            self.touched_renders.add(render.id)
            users = ", ".join(r[2] for r in render.sick_records)
            render.add_log(
                now, f"SICK: errors from {len(render.sick_records)} users in a row ({users})"
            )
            self.dirty_renders.add(render.id)
            self.counters["renders_sick"] += 1
            self.emit_render_event(render, Event.RENDER_SICK, now)

    def check_render_events(self, now: float, renders: Iterable[Render] | None = None) -> None:
        """RENDER_NO_TASK (T, 2T, 4T… idle) and RENDER_OVERLOAD (at once, then T, 2T…)."""
        no_task_time = self.per_pool("no_task_event_time", 0)
        overload_time = self.per_pool("overload_event_time", 0)
        for render in self.renders.values() if renders is None else renders:
            if not render.online:
                continue
            if not render.tasks:
                period = no_task_time(render.pool)
                if checks.no_task_due(render.idle_since, render.no_task_events, period, now):
                    render.no_task_events += 1
                    self.emit_render_event(render, Event.RENDER_NO_TASK, now)
            period = overload_time(render.pool)
            low = checks.overloaded(render.host_resources, *self.overflow) if period > 0 else []
            if not low:
                render.overload_since, render.overload_events = 0.0, 0
                continue
            if not render.overload_since:
                render.overload_since = now
            if checks.overload_due(render.overload_since, render.overload_events, period, now):
                render.overload_events += 1
                render.add_log(now, "overload: " + ", ".join(low))
                self.emit_render_event(render, Event.RENDER_OVERLOAD, now)

    def per_pool(self, name: str, default: float | None = None) -> Any:
        """An inherited pool parameter by pool path, each pool chain walked once per check
        (a check over 10,000 renders must not walk the chain 10,000 times)."""
        known: dict[str, float] = {}

        def value(path: str) -> float:
            found = known.get(path)
            if found is None:
                found = known[path] = self.pools.inherited(path, name, default)
            return found

        return value

    def _return_tasks(self, render: Render, status: str, now: float) -> None:
        for done in runs.return_render_tasks(self, render, status, now):
            self._after_finish(done.job, now)

    def _after_finish(self, job: Job, now: float) -> None:
        """A run of the job ended: its state may change, a deleting job may go, slots freed."""
        self.refresh_job(job, now)
        if job.deleting and not job.running_tasks:
            self._remove_job(job, now)
        self.solve_needed = True

    def move_render(self, render: Render, path: str) -> None:
        if path not in self.pools.by_path:
            raise Invalid("operation.name", f"no pool '{path}'")
        self.pools.by_path.get(render.pool, self.pools.by_path["/"]).renders.discard(render.id)
        render.pool = path
        self.pools.by_path[path].renders.add(render.id)
        self.dirty_renders.add(render.id)
        self.touched_renders.add(render.id)
        self.solve_needed = True
        if render.online:
            self.config_changed.append(render)

    def delete_render(self, render: Render) -> None:
        """Forget an offline render (its id is never given out again)."""
        del self.renders[render.id]
        del self.render_by_name[render.name]
        self.touched_renders.add(render.id)
        for pool in self.pools.by_path.values():
            pool.renders.discard(render.id)
        self.deleted_renders.append(render.id)

    def render_config(self, render: Render) -> dict[str, Any]:
        return self.pools.render_config(render.pool)

    def select_renders(self, names: list[str] | None, mask: str | None) -> list[Render]:
        """Renders by exact names and/or a regex mask (full match, as the original's masks)."""
        if names is None and mask is None:
            return sorted(self.renders.values(), key=lambda r: r.name)
        chosen: dict[int, Render] = {}
        for name in names or ():
            render = self.render_by_name.get(name)
            if render is None:
                raise NotFound(f"no render named '{name}'")
            chosen[render.id] = render
        if mask is not None:
            pattern = compile_mask(mask)
            for render in self.renders.values():
                if pattern.fullmatch(render.name):
                    chosen[render.id] = render
        return sorted(chosen.values(), key=lambda r: r.name)

    # --- users ---------------------------------------------------------------------------

    def touch_user(self, name: str, host_name: str, now: float) -> User:
        """Users appear on first contact and remember their last host."""
        user = self.users.get(name)
        if user is None:
            user = User(
                self._next_user_id, name, host_name, time_register=now, **self.user_defaults
            )
            self._next_user_id += 1
            self.users[name] = user
            self.counters["users_created"] += 1
            self.dirty_users.add(user.name)
        elif host_name and user.host_name != host_name:
            user.host_name = host_name
            self.dirty_users.add(user.name)
        user.time_activity = now
        return user

    # --- jobs ----------------------------------------------------------------------------

    def submitted(self, user_name: str, key: str) -> Job | None:
        """The job a submission with this idempotency key made, while it is on the farm."""
        job_id = self.submissions.get((user_name, key))
        return self.job(job_id) if job_id is not None else None

    def add_job(
        self, body: Any, user_name: str, host_name: str, now: float, submit_key: str = ""
    ) -> Job:
        """Register a submission whole, or raise Invalid and change nothing."""
        if isinstance(body, dict) and isinstance(body.get("user_name"), str) and body["user_name"]:
            user_name = body["user_name"]
        if not user_name:
            raise Invalid("job.user_name", "a job needs a user name")
        known = self.users.get(user_name)
        probe = known or User(0, user_name, **self.user_defaults)
        job = build_job(
            body,
            job_id=self._next_job_id,
            user=probe,
            now=now,
            progress_timeout=self.progress_timeout,
        )
        user = known or self.touch_user(user_name, job.host_name or host_name, now)
        job.user = user
        job.submit_key = submit_key
        self._next_job_id += 1
        job.name = self._unique_job_name(job.name)
        job.branch_node = self.branches.place(job.branch, now)
        job.branch = job.branch_node.path
        self._attach(job)
        self.job_by_name[job.name] = job
        job.add_log(now, f"submitted by {user.name} from {job.host_name or host_name or '?'}")
        self.refresh_job(job, now)
        self.counters["jobs_submitted"] += 1
        if postcmd.wait_for_pre(job, self._queue_post, now):
            self.refresh_job(job, now)
        self.emit_job_event(job, Event.JOB_CREATED, now)
        if job.state & State.RDY:  # born ready: refresh_job saw no change to tell solve_new of
            self.solve_new.add(job.id)
        return job

    def _attach(self, job: Job) -> None:
        self.ranking_stale = True  # a node the solver's kept levels do not hold
        job.user.add_job(job)
        job.branch_node.jobs.append(job)
        self.jobs[job.id] = job
        if job.submit_key:
            self.submissions[(job.user_name, job.submit_key)] = job.id
        for block in job.blocks:
            block.job_id = job.id
            block.dirty_sink = self.dirty_blocks
        self.min_task_capacity = min(self.min_task_capacity, min_task_capacity([job]))

    def restore_job(self, job: Job, now: float) -> None:
        """A stored job comes back; its running tasks wait for their renders (WRC). A task
        that already waited (its render went zombie before the stop) waits on from when its
        render went silent (its time_done), not from the restart: whatever the restarts,
        none waits longer than af_task_reconnect_timeout."""
        job.branch_node = self.branches.place(job.branch, now)
        self._attach(job)
        self.job_by_name[job.name] = job
        self._next_job_id = max(self._next_job_id, job.id + 1)
        for block in job.blocks:
            waiting = any(state & State.WRC for state in set(block.states))  # not counted
            if not block.count(State.RUN) and not waiting:
                continue
            for i, state in enumerate(block.states):
                key = (job.id, block.index, i)
                if state & State.RUN:
                    block.states[i] = (state & ~State.RUN) | State.WRC
                    self.wait_for_render(key, block, now + self.reconnect_timeout)
                elif state & State.WRC:
                    silent_since = min(block.time_done[i] or now, now)
                    self.wait_for_render(key, block, silent_since + self.reconnect_timeout)
            block.recount()
        # Its state as stored, not as a change: a done job does not become done again.
        job.state = job_state(job, [], now)

    def restored(self, now: float) -> None:
        """After every job is back: dependencies between them (done jobs are not looked at)."""
        for job in self.jobs.values():
            if not job.done and (job.depend_mask is not None or job.depend_mask_global is not None):
                self.refresh_job(job, now)

    def discard_job(self, job: Job) -> None:
        """Undo a submission the store could not take: as if it never came."""
        self.jobs.pop(job.id, None)
        self.submissions.pop((job.user_name, job.submit_key), None)
        self.job_by_name.pop(job.name, None)
        if job in job.user.jobs:
            job.user.jobs.remove(job)
        if job in job.branch_node.jobs:
            job.branch_node.jobs.remove(job)
        self.dirty_blocks.difference_update(job.blocks)
        self.dirty_jobs.discard(job.id)

    def job(self, job_id: int) -> Job | None:
        """A job by id, brought back from the store if it is a cold done job."""
        job = self.jobs.get(job_id)
        if job is None and job_id in self.cold and self.thaw_loader is not None:
            name = self.cold.pop(job_id)
            self.cold_names.pop(name, None)
            job = self.thaw_loader(job_id)
            if job is not None:
                self.restore_job(job, job.time_done)
        return job

    def _taken(self, name: str) -> bool:
        return name in self.job_by_name or name in self.cold_names

    def _unique_job_name(self, name: str) -> str:
        if not self._taken(name):
            return name
        n = 1
        while self._taken(f"{name}-{n}"):
            n += 1
        return f"{name}-{n}"

    def select_jobs(
        self, ids: list[int] | None, mask: str | None, user_name: str | None = None
    ) -> list[Job]:
        """Jobs by ids and/or a regex mask over names (full match), optionally of one user."""
        if ids is None and mask is None:
            for job_id in list(self.cold):
                self.job(job_id)
            chosen = list(self.jobs.values())
        else:
            found: dict[int, Job] = {}
            for job_id in ids or ():
                job = self.job(job_id)
                if job is None:
                    raise NotFound(f"no job with id {job_id}")
                found[job.id] = job
            if mask is not None:
                pattern = compile_mask(mask)
                for job_id in [i for i, name in self.cold.items() if pattern.fullmatch(name)]:
                    self.job(job_id)
                for job in self.jobs.values():
                    if pattern.fullmatch(job.name):
                        found[job.id] = job
            chosen = list(found.values())
        if user_name:
            chosen = [j for j in chosen if j.user_name == user_name]
        return sorted(chosen, key=lambda j: j.id)

    def refresh_job(self, job: Job, now: float) -> None:
        old = job.state
        waiting: list[Job] = []
        if job.depend_mask is not None:
            waiting += [
                o
                for o in job.user.jobs
                if o is not job and not o.done and job.depend_mask.fullmatch(o.name)
            ]
        if job.depend_mask_global is not None:
            waiting += [
                o
                for o in self.jobs.values()
                if o is not job and not o.done and job.depend_mask_global.fullmatch(o.name)
            ]
        job.state = job_state(job, waiting, now)
        if (job.state ^ old) & State.DON:
            self.dirty_jobs.add(job.id)
        if job.state & State.DON and not old & State.DON:
            job.time_done = now
            job.add_log(now, "done")
            self.counters["jobs_done"] += 1
            self.emit_job_event(job, Event.JOB_DONE, now)
            self._release_dependents(job, now)
        if job.state & State.ERR and not old & State.ERR:
            self.emit_job_event(job, Event.JOB_ERROR, now)
        if job.state & State.RDY and not old & State.RDY:
            self.solve_new.add(job.id)

    def _release_dependents(self, done: Job, now: float) -> None:
        for job in self.jobs.values():
            if (
                (job.depend_mask or job.depend_mask_global)
                and job is not done
                and job.state & State.WDP
            ):
                self.refresh_job(job, now)

    def delete_job(self, job: Job, now: float) -> None:
        """Stop its running tasks; the job goes when none runs any more (as the original)."""
        if not job.deleting:
            self.dirty_jobs.add(job.id)
            job.deleting = True
            job.paused = True
            job.add_log(now, "deleting")
            self.emit_job_event(job, Event.JOB_DELETED, now)
            for block in job.blocks:
                for i in list(block.running):
                    self.stop_task(job, block, i, "job deleted")
        if not job.running_tasks:
            self._remove_job(job, now)

    def create_system_job(
        self,
        services: tuple[str, str, str],
        tasksmax: int,
        tasklife: float,
        capacity: int,
        now: float,
    ) -> SystemJob:
        """The system job, made fresh at every start (its commands come back from the store)."""
        user = self.users.get(SYSTEM_USER) or self.touch_user(SYSTEM_USER, "", now)
        job = build_job(
            submission(services, tasksmax, capacity), job_id=SYSTEM_JOB_ID, user=user, now=now
        )
        job.serial = 0
        job.branch_node = self.branches.root
        self._attach(job)
        self.job_by_name[job.name] = job
        self.sysjob = SystemJob(job, tasksmax, tasklife)
        self.refresh_job(job, now)
        return self.sysjob

    def queue_system(self, block: int, command: str, now: float, **fields: Any) -> Command | None:
        """A command for the system job (a post command, an event, a wake)."""
        if self.sysjob is None or not command:
            return None
        cmd = self.sysjob.add(block, command, now, **fields)
        self.refresh_job(self.sysjob.job, now)
        self.solve_needed = True
        return cmd

    def emit_job_event(self, job: Job, event: Event, now: float) -> None:
        """An events task, when the job or its user asked for events (custom data)."""
        if (
            self.sysjob is None
            or job is self.sysjob.job
            or not has_custom(job.custom_data, job.user.custom_data)
        ):
            return
        data = payload.job_payload(job.summary(), job.user.to_json(), [event])
        self._queue_event(event, data, job.user_name, job.name, now)

    def emit_render_event(self, render: Render, event: Event, now: float) -> None:
        """An events task, when the render, a pool above it, the system job or afadmin asked."""
        if self.sysjob is None:
            return
        pools = self.pools.chain(render.pool)
        admin = self.users.get(SYSTEM_USER)
        customs = [render.custom_data, self.sysjob.job.custom_data, *(p.custom_data for p in pools)]
        if not has_custom(*customs, admin.custom_data if admin else ""):
            return
        data = payload.render_payload(
            render.to_json(),
            [p.settings() for p in pools],
            admin.to_json() if admin else {},
            self.sysjob.job.summary(),
            [event],
        )
        self._queue_event(event, data, render.user_name, render.name, now)

    def _queue_event(
        self, event: Event, data: dict[str, Any], user: str, name: str, now: float
    ) -> None:
        """The events block's command is the payload; its task is named after the event."""
        self.queue_system(
            EVENTS, json.dumps(data), now, task_name=event, user_name=user, job_name=name
        )
        self.counters["events"] += 1

    def _queue_post(self, command: str, now: float, **fields: Any) -> Command | None:
        """A command for the system job's post-commands block (postcmd/)."""
        return self.queue_system(POST_COMMANDS, command, now, **fields)

    def _pre_ended(self, cmd: Command, ok: bool, output: str, now: float) -> None:
        job = self.job(cmd.pre_for)
        if job is not None and postcmd.pre_ended(job, cmd, ok, output, now):
            self.dirty_jobs.add(job.id)
            self.refresh_job(job, now)

    def _remove_job(self, job: Job, now: float) -> None:
        self.ranking_stale = True
        postcmd.queue_commands(job, "command_post", self._queue_post, now)  # left to run
        self.stats_rows.extend(("jobs", row) for row in stats_job_rows(job, now))
        self.jobs.pop(job.id, None)
        self.submissions.pop((job.user_name, job.submit_key), None)
        if self.job_by_name.get(job.name) is job:
            del self.job_by_name[job.name]
        if job in job.user.jobs:
            job.user.jobs.remove(job)
        if job in job.branch_node.jobs:
            job.branch_node.jobs.remove(job)
        self.counters["jobs_deleted"] += 1
        self.removed_job_ids.append(job.id)
        for other in self.jobs.values():
            if other.state & State.WDP:
                self.refresh_job(other, now)
        self.deleted_jobs.append(job)

    def stop_task(self, job: Job, block: Block, i: int, reason: str, state_after: int = 0) -> None:
        run = runs.request_stop(block, i, reason, state_after)
        if run is None:
            return
        render = self.renders.get(run.render_id)
        if render is not None and render.online:
            self.stops.append((render, [job.id, block.index, i, run.attempt]))

    # --- task reports from renders ---------------------------------------------------------

    def task_reports(
        self, render: Render, reports: list[dict[str, Any]], now: float
    ) -> ReportResult:
        result = ReportResult()
        for report in reports:
            key = (report["job_id"], report["block_id"], report["task_id"])
            attempt = report["attempt"]
            status = report["status"]
            current = runs.current_run(self, render, key, attempt) or self._readopt(
                render, key, attempt, now
            )
            if current is None:
                self.counters["reports_refused"] += 1
                render.add_log(
                    now, f"refused a report on task {list(key)} attempt {attempt}: not its task"
                )
                (result.close if status in FINAL_STATUSES else result.stop).append([*key, attempt])
                continue
            job, block, i, run = current
            if runs.progress(run, report, now):
                self.progressed.setdefault(block, set()).add(i)
            chunk = report.get("output")
            if chunk:
                result.output.append((key, attempt, chunk))
            if report.get("output_full"):
                result.full_output.append((key, attempt, report["output_full"]))
            if status in FINAL_STATUSES:
                stopped = bool(run.stop_reason)
                finished = runs.finish(self, render, job, block, i, status, now, report)
                result.finished.append(finished)
                if status in ERROR_STATUSES and not stopped:
                    self.render_error(render, block.service, job.user_name, now)
                elif status in SUCCESS_STATUSES:
                    render.sick_records.clear()
                if self.sysjob is not None and job is self.sysjob.job:
                    output = (report.get("output") or b"").decode("utf-8", errors="replace")
                    ok = bool(block.states[i] & State.DON)
                    cmd = self.sysjob.after_finish(block, i, now, output)
                    if cmd is not None and cmd.pre_for:
                        self._pre_ended(cmd, ok, self.sysjob.last_output or output, now)
                result.close.append([*key, attempt])
                if finished.state & State.DON and not block.running and block.done:
                    job.add_log(now, f"block '{block.name}' done")
                self._after_finish(job, now)
            elif run.stop_reason:
                result.stop.append([*key, attempt])
        return result

    def _readopt(
        self, render: Render, key: Key, attempt: int, now: float
    ) -> tuple[Job, Block, int, Any] | None:
        """A run this render reports but we do not hold: take it back if nothing newer started
        (same attempt), it last ran there, and it waits (WRC) or was returned to ready."""
        found = runs.locate(self, key)
        if found is None:
            return None
        job, block, i = found
        state = block.states[i]
        host = block.hosts[i]
        if block.starts[i] != attempt or host < 0 or block.host_names[host] != render.name:
            return None
        if state & State.RUN or not state & (State.WRC | State.RDY) or job.deleting:
            return None
        self.wrc.pop(key, None)
        run = runs.adopt(self, render, job, block, i, attempt, now)
        self.counters["runs_readopted"] += 1
        return job, block, i, run

    def wait_for_render(self, key: Key, block: Block, deadline: float) -> None:
        """The task waits (WRC) until `deadline` for the render that last ran it."""
        self.wrc[key] = deadline
        host = block.hosts[key[2]]
        if host >= 0:
            self.wrc_hosts.setdefault(block.host_names[host], set()).add(key)

    def _wait_over(self, key: Key, now: float, why: str, render_name: str = "") -> bool:
        """A task that waited for its render (WRC) is ready again, without an error.
        `render_name`: only if that render last ran it."""
        found = runs.locate(self, key)
        if found is None or not found[1].states[found[2]] & State.WRC:
            self.wrc.pop(key, None)
            return False
        job, block, i = found
        host = block.hosts[i]
        if render_name and (host < 0 or block.host_names[host] != render_name):
            return False
        self.wrc.pop(key, None)
        if host >= 0:
            self.wrc_hosts.get(block.host_names[host], set()).discard(key)
        block.set_state(i, (block.states[i] & ~State.WRC) | State.RDY)
        block.add_task_log(i, now, f"{why}: ready again")
        self.solve_needed = True
        return True

    def release_unheld(self, render: Render, reported: set[Key], now: float) -> None:
        """A render registered without runs it last had (it stopped cleanly, killing them):
        they need not wait af_task_reconnect_timeout for it; they are ready at once."""
        for key in self.wrc_hosts.pop(render.name, ()):
            if key in self.wrc and key not in reported:
                self._wait_over(key, now, f"{render.name} came back without it", render.name)

    def check_held(
        self,
        render: Render,
        held: list[list[int]],
        now: float,
        grace: float,
        seen: int | None = None,
        grace_long: float = 60.0,
    ) -> None:
        """Runs we think the render holds but it does not: their start was lost. Back to ready.

        A render that echoes the last push it has seen (`seen`) proves a start missing only
        once it has seen the push that carried it, however late its heartbeat arrives (an
        overloaded broker may hold heartbeats for seconds); `grace_long` still catches a push
        that never arrived. An older render without the echo gets the time `grace`."""
        held_keys = {(k[0], k[1], k[2]) for k in held}
        for key in [k for k in render.tasks if k not in held_keys]:
            found = runs.locate(self, key)
            if found is None:
                render.tasks.pop(key, None)
                continue
            job, block, i = found
            run = block.running.get(i)
            if run is None:
                continue
            if seen is None and now - run.time_start < grace:
                continue
            if seen is not None and run.start_seq > seen and now - run.time_start < grace_long:
                continue  # its start is still on the way to the render
            render.add_log(now, f"task {list(key)} is not on the render: returned to ready")
            runs.finish(self, render, job, block, i, "render_lost", now, {})
            self._after_finish(job, now)

    def refresh(self, now: float) -> None:
        """The periodic pass: forgiveness, run-time limits, time waits, life times, job states."""
        self.renders_rescan = True  # whatever changed renders unannounced is seen within a pass
        if self.sysjob is not None:
            for cmd in self.sysjob.expire(now):
                self.solve_needed = True
                if cmd.pre_for:
                    why = self.sysjob.last_output or "not run within af_sysjob_tasklife"
                    self._pre_ended(cmd, False, why, now)
        for key in [k for k, deadline in self.wrc.items() if deadline < now]:
            self._wait_over(key, now, "its render did not come back in time")
        system = self.sysjob.job if self.sysjob is not None else None
        for job in list(self.jobs.values()):
            user_life = job.user.jobs_life_time
            expired = checks.life_over(job.time_creation, job.time_life, user_life, now)
            if expired and job is not system and not job.deleting:
                job.add_log(now, "life time over: deleting")
                self.delete_job(job, now)
            if job.done and not job.running_tasks or job.id not in self.jobs:
                continue
            for block in job.blocks:
                if block.error_hosts and errors.forgive(block, job, now):
                    self.solve_needed = True
                for i, why in errors.overdue_runs(block, now):
                    job.add_log(now, f"block '{block.name}' task {i}: {why}")
                    self.stop_task(job, block, i, why, State.ERR)
            self.refresh_job(job, now)

    # --- figures -------------------------------------------------------------------------

    def stat(self) -> dict[str, Any]:
        online = sum(1 for r in self.renders.values() if r.online)
        return {
            "renders_total": len(self.renders),
            "renders_online": online,
            "renders_busy": sum(1 for r in self.renders.values() if r.flags & RenderFlag.RUN),
            "users_total": len(self.users),
            "pools_total": len(self.pools.by_path),
            "jobs_total": len(self.jobs) + len(self.cold),
            "tasks_running": sum(len(r.tasks) for r in self.renders.values()),
            **dict(self.counters),
        }


def compile_mask(mask: str) -> Pattern:
    """A request's mask over names (jobs, renders): RE2, full match."""
    return compile_pattern(mask, "mask")
