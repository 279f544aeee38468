"""Why a job is not running (SPEC A12): the solver's own rules, asked of every render.

Nothing here is kept between calls: the answer is worked out when someone asks, with the
same rule functions the solver stops at, so it cannot disagree with what the solver does.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from workers.scheduler.masks import hosts_mask_words
from workers.scheduler.solver import (
    block_cannot_run,
    block_not_on_render,
    job_cannot_run,
    job_not_on_render,
    pick_task,
    render_not_ready,
)
from workers.scheduler.states import State

if TYPE_CHECKING:
    from workers.scheduler.farm import Farm
    from workers.scheduler.jobs import Job


def explain(farm: Farm, job: Job, now: float) -> dict[str, Any]:
    """{"job": reason or None, "blocks": {name: reason}, "renders": {reason: how many renders}}."""
    blocks = {b.name: reason for b in job.blocks if (reason := block_cannot_run(b)) is not None}
    runnable = [b for b in job.blocks if b.name not in blocks]
    renders: Counter[str] = Counter()
    for r in farm.renders.values():
        reason = render_not_ready(farm, r) or job_not_on_render(farm, job, r)
        if reason is None:
            block_reasons = [block_not_on_render(farm, b, job, r) for b in runnable]
            if runnable and all(block_reasons):
                reason = "; ".join(
                    sorted(
                        {
                            f"block '{b.name}': {why}"
                            for b, why in zip(runnable, block_reasons, strict=True)
                        }
                    )
                )
            elif runnable and all(pick_task(farm, b, job, r) is None for b in runnable):
                reason = "no task it may run now (dependencies or avoided host)"
            elif not runnable:
                reason = "no block can run"
            else:
                reason = "could run a task now"
        renders[reason] += 1
    if not farm.renders:
        renders["no renders on the farm"] += 1
    return {
        "job": job_cannot_run(job, now),
        "blocks": blocks,
        "renders": dict(renders),
        "waiting": waiting_for_renders(farm, job, now),
        "hints": hints(job, renders),
    }


def waiting_for_renders(farm: Farm, job: Job, now: float) -> list[str]:
    """Its tasks that wait (WRC) for the render that ran them to come back with results."""
    lines = []
    for (job_id, b, i), deadline in sorted(farm.wrc.items()):
        if job_id != job.id or b >= len(job.blocks):
            continue
        block = job.blocks[b]
        host = block.host_names[block.hosts[i]] if block.hosts[i] >= 0 else "its render"
        lines.append(
            f"block '{block.name}' task {i} waits for {host} to come back with its result "
            f"(af_task_reconnect_timeout: {max(0.0, deadline - now):.0f} s more), then runs "
            "elsewhere"
        )
    return lines


def hints(job: Job, renders: Counter[str]) -> list[str]:
    """What a wrangler can do about it, in afcmd's words."""
    out = []
    if any(b.count(State.ERR) for b in job.blocks):
        out.append(
            f"tasks failed: read one's output (afcmd tout {job.id} BLOCK TASK), fix the "
            f"cause, then afcmd jrestarterrors {job.id}"
        )
    if any(b.error_hosts for b in job.blocks) or any("avoided" in r for r in renders):
        out.append(
            f"renders avoided after errors (errors_avoid_host): afcmd brerrors {job.id} lets "
            "them run it again"
        )
    if any("hosts_mask" in reason for reason in renders):
        out += _masks(job)
    return out


def _masks(job: Job) -> list[str]:
    """The hosts masks of the job and its blocks, each in words (jhmask sets the job's)."""
    out = []
    for key in ("hosts_mask", "hosts_mask_exclude"):
        if (mask := getattr(job, key)) is not None:
            fix = f"afcmd jhmask {job.id} MASK" if key == "hosts_mask" else "afcmd jshow"
            out.append(f"{hosts_mask_words(mask, key)} (see {fix})")
        for b in job.blocks:
            if (mask := getattr(b, key)) is not None:
                out.append(f"block '{b.name}' {hosts_mask_words(mask, key)}")
    return out


def plain_words(job: Job, why: dict[str, Any]) -> str:
    """The answer as lines a wrangler reads."""
    lines = [f"job {job.id} '{job.name}' ({job.user_name}): " + (why["job"] or "may run")]
    for name, reason in why["blocks"].items():
        lines.append(f"  block '{name}': {reason}")
    for reason, count in sorted(why["renders"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {count} render{'s' if count != 1 else ''}: {reason}")
    lines += [f"  {line}" for line in why.get("waiting", ())]
    lines += [f"  fix: {line}" for line in why.get("hints", ())]
    return "\n".join(lines)
