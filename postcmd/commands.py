"""What a job's pre and post commands are, and how its tasks wait for the pre ones.

The farm owns the state (jobs, the system job's queues); these functions decide and word the
logs. A job's own command runs in its first block's working directory, each block's in its
own. A deleted job leaves its command_post behind to run; a submitted job's tasks wait (WDP)
until every command_pre it queued is done, and a failed one holds the job in ERR.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

Which = Literal["command_pre", "command_post"]


class JobLike(Protocol):
    """The parts of a scheduler job that post commands read and change."""

    id: int
    name: str
    user_name: str
    blocks: list[Any]
    waiting_pre: set[int]
    pre_failed: bool

    def add_log(self, now: float, text: str) -> None: ...


class Queued(Protocol):
    id: int
    command: str


Queue = Callable[..., "Queued | None"]  # (command, now, **fields): the system job's queueing


def job_commands(job: JobLike, which: Which) -> list[tuple[str, str]]:
    """(command, working directory) of the job's and its blocks' command_pre or
    command_post, in that order, the empty ones left out."""
    first_wdir = job.blocks[0].working_directory if job.blocks else ""
    pairs = [(getattr(job, which), first_wdir)]
    pairs += [(getattr(b, which), b.working_directory) for b in job.blocks]
    return [(command, wdir) for command, wdir in pairs if command]


def queue_commands(
    job: JobLike, which: Which, queue: Queue, now: float, pre_for: int = 0
) -> list[Queued]:
    """Queue the job's commands of one kind; `pre_for`: the job whose tasks wait for them."""
    queued = []
    for command, wdir in job_commands(job, which):
        cmd = queue(
            command,
            now,
            working_directory=wdir,
            user_name=job.user_name,
            job_name=job.name,
            pre_for=pre_for,
        )
        if cmd is not None:
            queued.append(cmd)
    return queued


def wait_for_pre(job: JobLike, queue: Queue, now: float) -> bool:
    """A new job's command_pre are queued and its tasks wait for them. True when it waits."""
    job.waiting_pre.update(
        c.id for c in queue_commands(job, "command_pre", queue, now, pre_for=job.id)
    )
    if job.waiting_pre:
        job.add_log(now, f"waiting for {len(job.waiting_pre)} command_pre")
    return bool(job.waiting_pre)


def pre_ended(job: JobLike, cmd: Queued, ok: bool, output: str, now: float) -> bool:
    """One of the job's command_pre ended for good (done, or failed: out of retries, or not
    run in time). True when the job was waiting for it (its state must be refreshed)."""
    if cmd.id not in job.waiting_pre:
        return False
    job.waiting_pre.discard(cmd.id)
    if ok:
        job.add_log(now, f"command_pre done: {cmd.command}")
    else:
        job.pre_failed = True
        job.add_log(now, f"command_pre FAILED: {cmd.command}\n{output}")
    return True


def why_not_ready(job: JobLike) -> str | None:
    """jwhy's words when the job's command_pre holds it; None when it does not."""
    if job.pre_failed:
        return "its command_pre failed (see the job log)"
    if job.waiting_pre:
        return "waiting for its command_pre to run"
    return None
