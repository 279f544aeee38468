"""Sleep and wake of renders (SPEC B §8, A6, A7): requests, wake tasks, retries, automation.

A sleep request marks the render WFL and tells it to run its sleep command; when its
heartbeats stop it becomes WSL (sleeping, not a zombie). A wake marks it WWK and queues a
`wake-on-lan` system task whose command is `af_render_cmd_wolwake` with the render's MACs;
a wake that brings no registration within `af_wolwake_timeout` is retried
`af_wolwake_retries` times, then the render's log says it failed.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import TYPE_CHECKING

from broker.validate import Invalid
from workers.scheduler.renders import Render, RenderFlag
from workers.scheduler.solver import (
    block_cannot_run,
    block_not_on_render,
    job_cannot_run,
    job_not_on_render,
)
from workers.scheduler.systemjob import WAKE_ON_LAN

if TYPE_CHECKING:
    from workers.scheduler.farm import Farm


def macs(render: Render) -> list[str]:
    return [n["mac"] for n in render.netifs if n.get("mac")]


def request_sleep(farm: Farm, render: Render, now: float, why: str) -> None:
    if not render.online:
        raise Invalid("operation", f"render {render.name} is offline: it cannot be put to sleep")
    if render.flags & (RenderFlag.WSL | RenderFlag.WWK | RenderFlag.WFL):
        raise Invalid("operation", f"render {render.name} is already asleep or waking")
    if render.tasks:
        raise Invalid(
            "operation", f"render {render.name} is busy: {len(render.tasks)} tasks running"
        )
    if not macs(render):
        raise Invalid(
            "operation", f"render {render.name} reported no network interface to be woken by"
        )
    render.flags |= RenderFlag.WFL
    render.wol_operation_time = now
    render.add_log(now, f"asked to sleep ({why})")
    farm.sleeps.append(render)
    farm.dirty_renders.add(render.id)


def wake_command(farm: Farm, render: Render) -> str:
    args = ["--wake", "--ip", render.address or "-", "--hostname", render.name, *macs(render)]
    return f"{farm.wolwake_cmd} {shlex.join(args)}"


def request_wake(farm: Farm, render: Render, now: float, why: str) -> None:
    if render.online:
        raise Invalid("operation", f"render {render.name} is online: nothing to wake")
    if render.flags & RenderFlag.WFL:
        raise Invalid(
            "operation", f"render {render.name} is falling asleep: wake it once it sleeps"
        )
    if not macs(render):
        raise Invalid("operation", f"render {render.name} has no known network interface to wake")
    render.flags |= RenderFlag.WWK
    render.wol_operation_time = now
    render.wake_attempts += 1
    render.add_log(now, f"wake requested ({why}), attempt {render.wake_attempts}")
    farm.queue_system(
        WAKE_ON_LAN,
        wake_command(farm, render),
        now,
        task_name=f"wake {render.name}",
        job_name=render.name,
    )
    farm.dirty_renders.add(render.id)


_WWK = RenderFlag.WWK
_WWK_ONL = RenderFlag.WWK | RenderFlag.ONL


def check_wakes(
    farm: Farm, now: float, timeout: float, retries: int, renders: Iterable[Render] | None = None
) -> None:
    """Wakes that brought no registration in time: again, then given up with a log line.
    `renders`: the part of the farm to look at (all by default)."""
    for render in farm.renders.values() if renders is None else renders:
        if render.flags & _WWK_ONL != _WWK or now - render.wol_operation_time < timeout:
            continue
        if render.wake_attempts <= retries:
            render.flags &= ~RenderFlag.WWK
            request_wake(farm, render, now, f"retry: no registration within {timeout:g} s")
        else:
            render.flags &= ~RenderFlag.WWK
            render.add_log(
                now, f"wake FAILED: no registration after {render.wake_attempts} attempts"
            )
            render.wake_attempts = 0
            farm.dirty_renders.add(render.id)


def wakeable(farm: Farm, render: Render) -> bool:
    """SPEC B §4: has a pool, not sick, offline, sleeping, not already waking, usable."""
    flags = render.flags
    return (
        not render.online
        and bool(flags & RenderFlag.WSL)
        and not flags & (RenderFlag.WWK | RenderFlag.SIC)
        and render.priority > 0
        and farm.pools.not_ready(render.pool) is None
        and farm.pools.max_tasks(render) > 0
        and bool(macs(render))
    )


_WSL = RenderFlag.WSL
_WSL_ONL = RenderFlag.WSL | RenderFlag.ONL


def wake_for_work(farm: Farm, now: float) -> Render | None:
    """One sleeping render that a ready job could run on, woken (at most one per call).

    Not for the system job: a wake task must not wake a sleeper to wake another one."""
    sleepers = [
        r for r in farm.renders.values() if r.flags & _WSL_ONL == _WSL and wakeable(farm, r)
    ]
    if not sleepers:
        return None
    system = farm.sysjob.job if farm.sysjob is not None else None
    for job in farm.jobs.values():
        if job is system or job_cannot_run(job, now) is not None:
            continue
        blocks = [b for b in job.blocks if block_cannot_run(b) is None]
        for render in sorted(sleepers, key=lambda r: (-r.priority, r.name)):
            if job_not_on_render(farm, job, render) is not None:
                continue
            if any(block_not_on_render(farm, b, job, render) is None for b in blocks):
                request_wake(farm, render, now, f"job '{job.name}' waits for it")
                return render
    return None


_ONL = RenderFlag.ONL
_WFL_WSL = RenderFlag.WFL | RenderFlag.WSL


def sleep_idle(farm: Farm, now: float, renders: Iterable[Render] | None = None) -> None:
    """Pool idle_wolsleep_time: renders idle that long go to sleep."""
    idle_time = farm.per_pool("idle_wolsleep_time", 0)
    for render in farm.renders.values() if renders is None else renders:
        flags = render.flags
        if not flags & _ONL or render.tasks or flags & _WFL_WSL:
            continue
        idle = idle_time(render.pool)
        if idle > 0 and now - render.idle_since >= idle and macs(render):
            request_sleep(farm, render, now, f"idle for {idle:g} s")
