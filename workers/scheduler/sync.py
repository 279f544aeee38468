"""Keeps the store in step with the farm: restore at start, submissions at once, the rest
committed in one transaction per loop pass, before any message that reveals it goes out."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from broker.validate import Invalid
from workers.scheduler import operations as ops
from workers.scheduler import persist
from workers.scheduler.farm import Farm, Refused
from workers.scheduler.jobs import Job
from workers.scheduler.store import Store
from workers.scheduler.storehealth import Fault, store_fault
from workers.scheduler.systemjob import SYSTEM_JOB_ID, Command

log = logging.getLogger("store")

SYSTEM_SETTINGS = "system_job"  # meta keys: the system job's pause and parameters,
SYSTEM_ATTEMPTS = "system_attempts"  # and the highest attempt each of its blocks gave


def system_settings(job: Job) -> dict[str, Any]:
    """What an admin may change on the system job: its pause and its parameters."""
    params = {k: v for k, v in job.params.items() if k in ops.JOB_PARAMS}
    return {"paused": job.paused, "params": params}


def restore_system_settings(farm: Farm, settings: dict[str, Any], now: float) -> None:
    """Put the stored pause and parameters back on the system job made at this start; a
    parameter refused now (a mask RE2 cannot run) is left out with a line in its log."""
    job = farm.sysjob.job if farm.sysjob is not None else None
    if job is None:
        return
    job.paused = bool(settings.get("paused", False))
    for key, value in dict(settings.get("params") or {}).items():
        if job.params.get(key) == value:
            continue
        try:
            ops.job_params(farm, job, {key: value}, now)
        except Invalid as exc:
            job.add_log(now, f"stored parameter {key} left out: {exc}")
    farm.dirty_jobs.discard(job.id)


def compact_threshold(block: Any) -> int:
    """Task rows a block may gather beside its snapshot before the snapshot is rewritten."""
    return max(1000, block.tasks_num // 4)


class StoreFaulted(Refused):
    """A submission the store had no room (or no right) for: it was not stored."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(f"the store cannot be written: {fault.detail}; nothing was submitted")
        self.fault = fault


class FarmStore:
    def __init__(self, store: Store, farm: Farm) -> None:
        self.store = store
        self.farm = farm
        self.commits = 0
        self.stats_off = False  # af_db_conninfo = off: rows are dropped, not kept
        self.on_stats: Callable[[], None] = lambda: None  # rows committed: the writer's bell

    def restore(self, now: float) -> dict[str, Any]:
        farm, store = self.farm, self.store
        started = time.monotonic()
        farm.pools.restore(store.load_pools())
        farm.restore(store.load("renders"), store.load("users"))
        farm._next_render_id = max(farm._next_render_id, int(store.meta("next_render_id", "1")))
        farm._next_job_id = max(farm._next_job_id, int(store.meta("next_job_id", "0")))
        jobs = tasks = 0
        for row, blocks, task_rows in store.load_jobs():
            user = farm.users.get(row[2]) or farm.touch_user(row[2], "", now)
            job = persist.restore_job(row, blocks, task_rows, user, farm.progress_timeout, now)
            farm.restore_job(job, now)
            jobs += 1
            tasks += job.tasks_total()
        for job_id, name, _user in store.done_jobs():
            farm.cold[job_id] = name
            farm.cold_names[name] = job_id
            farm._next_job_id = max(farm._next_job_id, job_id + 1)
        farm.thaw_loader = self.load_job
        farm.restored(now)
        farm.solve_needed = True
        return {
            "renders": len(farm.renders),
            "users": len(farm.users),
            "jobs": jobs,
            "done_jobs_left_in_store": len(farm.cold),
            "tasks": tasks,
            "waiting_for_renders": len(farm.wrc),
            "seconds": round(time.monotonic() - started, 3),
        }

    def restore_system(self, now: float) -> int:
        """The system job's settings and commands (after the job itself was made). Commands
        that were running wait for their renders (WRC) like any job's running tasks."""
        farm = self.farm
        sysjob = farm.sysjob
        assert sysjob is not None  # made by the caller just before
        stored = self.store.meta(SYSTEM_SETTINGS)
        if stored:
            restore_system_settings(farm, json.loads(stored), now)
        commands = [Command(**c) for c in self.store.load_syscommands()]
        attempts = json.loads(self.store.meta(SYSTEM_ATTEMPTS, "[]"))
        for cmd in sysjob.restore(commands, now, attempts):
            block = sysjob.job.blocks[cmd.block]
            key = (SYSTEM_JOB_ID, cmd.block, cmd.slot)
            farm.wait_for_render(key, block, now + farm.reconnect_timeout)
        farm.refresh_job(sysjob.job, now)
        return len(commands)

    def load_job(self, job_id: int) -> Job | None:
        """A done job read back on demand (it was left in the store at the restart)."""
        rows = self.store.load_job(job_id)
        if rows is None:
            return None
        row, blocks, task_rows = rows
        now = time.time()
        user = self.farm.users.get(row[2]) or self.farm.touch_user(row[2], "", now)
        return persist.restore_job(row, blocks, task_rows, user, self.farm.progress_timeout, now)

    def insert_job(self, job: Job) -> None:
        """Store a submission whole before it is acknowledged; if that fails, forget it."""
        blocks = [
            (job.id, b.index, persist.block_definition(b), *persist.block_snapshot(b))
            for b in job.blocks
        ]
        try:
            self.store.insert_job(persist.job_row(job), blocks, self.farm._next_job_id)
        except self.store.ERRORS as exc:
            self.farm.discard_job(job)
            fault = store_fault(exc)
            if fault is not None:
                raise StoreFaulted(fault) from exc
            log.error("could not store job %d '%s': %s", job.id, job.name, exc)
            raise Refused(
                f"the server could not store the job ({exc}); nothing was submitted"
            ) from exc
        for block in job.blocks:
            block.dirty.clear()
        self.farm.dirty_blocks.difference_update(job.blocks)
        self.farm.dirty_jobs.discard(job.id)

    def dirty(self) -> bool:
        f = self.farm
        return bool(
            f.dirty_renders
            or f.dirty_users
            or f.deleted_renders
            or f.dirty_jobs
            or f.dirty_blocks
            or f.redefined_blocks
            or f.removed_job_ids
            or f.dirty_pools
            or f.deleted_pools
            or (f.sysjob is not None and (f.sysjob.added or f.sysjob.ended))
            or f.stats_rows
        )

    def flush(self) -> None:
        """One transaction for everything that changed since the last one.

        The farm's change marks are cleared only once it is committed: a commit that fails
        (a full disk) leaves them, and the next flush writes the same changes, as they
        stand then, again. Nothing is half-stored and nothing is forgotten."""
        if not self.dirty():
            return
        with self.store.transaction():
            snapshots = self._write()
        self._written(snapshots)
        self.commits += 1

    def _write(self) -> set[Any]:
        """The changed rows into the open transaction; changes nothing in the farm. Returns
        the blocks whose task arrays were written whole (a new snapshot)."""
        farm, store = self.farm, self.store
        if farm.dirty_renders:
            store.save(
                "renders",
                [farm.renders[i].settings() for i in farm.dirty_renders if i in farm.renders],
            )
            store.set_meta("next_render_id", str(farm._next_render_id))
        if farm.dirty_users:
            store.save(
                "users", [farm.users[n].to_json() for n in farm.dirty_users if n in farm.users]
            )
        if farm.deleted_renders:
            store.delete("renders", farm.deleted_renders)
        pools = [
            farm.pools.by_path[p].settings() for p in farm.dirty_pools if p in farm.pools.by_path
        ]
        if pools:
            store.save_pools(pools)
        if farm.deleted_pools:
            store.delete_pools(farm.deleted_pools)
        sysjob = farm.sysjob
        if sysjob is not None and (sysjob.added or sysjob.ended):
            ended = set(sysjob.ended)
            store.save_syscommands([c.to_json() for c in sysjob.added if c.id not in ended])
            store.delete_syscommands(sysjob.ended)
            store.set_meta(SYSTEM_ATTEMPTS, json.dumps(sysjob.attempts()))
        # the system job is made at every start: its commands and settings are stored
        if sysjob is not None and SYSTEM_JOB_ID in farm.dirty_jobs:
            store.set_meta(SYSTEM_SETTINGS, json.dumps(system_settings(sysjob.job)))
        jobs = [
            persist.job_row(farm.jobs[i])
            for i in farm.dirty_jobs
            if i in farm.jobs and i != SYSTEM_JOB_ID
        ]
        if jobs:
            store.save_jobs(jobs)
        tasks: list[tuple[Any, ...]] = []
        metas: list[tuple[str, int, int]] = []
        snapshots: list[tuple[Any, ...]] = []
        redefined = [
            (b.job_id, b.index, persist.block_definition(b), *persist.block_snapshot(b))
            for b in farm.redefined_blocks
            if b.job_id in farm.jobs and b.job_id != SYSTEM_JOB_ID
        ]
        if redefined:
            store.save_blocks(redefined)
        whole = set(farm.redefined_blocks)
        for block in farm.dirty_blocks:
            if block.job_id not in farm.jobs or block.job_id == SYSTEM_JOB_ID:
                continue
            if block in whole:
                continue
            if block.delta_rows + len(block.dirty) > compact_threshold(block):
                snapshots.append((*persist.block_snapshot(block), block.job_id, block.index))
                whole.add(block)
            else:
                tasks += persist.task_rows(block.job_id, block, block.dirty)
                metas.append((persist.block_meta(block), block.job_id, block.index))
        store.save_tasks(tasks)
        store.save_block_meta(metas)
        if snapshots:
            store.save_snapshots(snapshots)
        if farm.removed_job_ids:
            store.delete_jobs(farm.removed_job_ids)
        if farm.stats_rows and not self.stats_off:
            store.add_stats(farm.stats_rows)
        return whole

    def _written(self, snapshots: set[Any]) -> None:
        """The commit went through: the farm's change marks are cleared."""
        farm = self.farm
        sysjob = farm.sysjob
        if sysjob is not None:
            sysjob.added.clear()
            sysjob.ended.clear()
        for block in farm.dirty_blocks:
            if block in snapshots:
                block.delta_rows = 0
            elif block.job_id in farm.jobs and block.job_id != SYSTEM_JOB_ID:
                block.delta_rows += len(block.dirty)
            block.dirty.clear()
        for block in farm.redefined_blocks:
            block.delta_rows = 0
            block.dirty.clear()
        farm.redefined_blocks.clear()
        farm.dirty_renders.clear()
        farm.dirty_users.clear()
        farm.deleted_renders.clear()
        farm.dirty_jobs.clear()
        farm.dirty_blocks.clear()
        farm.removed_job_ids.clear()
        farm.dirty_pools.clear()
        farm.deleted_pools.clear()
        if farm.stats_rows and not self.stats_off:
            self.on_stats()
        farm.stats_rows.clear()
