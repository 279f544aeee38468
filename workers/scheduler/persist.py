"""Jobs to store rows and back. Pure conversions; the store does the I/O.

A job row holds what was submitted (its validated keys, kept up to date by parameter
edits) and what the server decided (id, name, user, branch, pause, times). A block row
holds its own figures and a snapshot of its task arrays as bytes; task changes after the
snapshot live in task rows that overlay it (compacted into a new snapshot when many).
"""

from __future__ import annotations

import json
import re
from array import array
from typing import TYPE_CHECKING, Any

from broker.validate import Invalid
from workers.scheduler.states import State
from workers.scheduler.submit import build_job

if TYPE_CHECKING:
    from workers.scheduler.jobs import Block, Job
    from workers.scheduler.users import User

ARRAYS = ("states", "starts", "errors", "time_start", "time_done")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def job_row(job: Job) -> tuple[Any, ...]:
    data = {
        "params": job.params,
        "user_name": job.user_name,
        "branch": job.branch,
        "paused": job.paused,
        "deleting": job.deleting,
        "waiting_pre": sorted(job.waiting_pre),
        "pre_failed": job.pre_failed,
        "time_creation": job.time_creation,
        "time_started": job.time_started,
        "time_done": job.time_done,
        "serial": job.serial,
        "submit_key": job.submit_key,
    }
    return (job.id, job.name, job.user_name, int(bool(job.state & State.DON)), _dumps(data))


def block_meta(block: Block) -> str:
    """The block's own figures (its params and task list travel in the job row's params)."""
    return _dumps(
        {
            "time_started": block.time_started,
            "run_time_sum": block.run_time_sum,
            "error_hosts": block.error_hosts,
        }
    )


def block_definition(block: Block) -> str:
    """What was submitted for the block: written once, with the job."""
    data = dict(block.params)
    if block.list_tasks is not None:
        data["tasks"] = block.list_tasks
    return _dumps(data)


def block_snapshot(block: Block) -> tuple[Any, ...]:
    """The block's figures and its task arrays as bytes (hosts by name)."""
    hosts = [block.host_names[h] if h >= 0 else "" for h in block.hosts]
    return (block_meta(block), *(getattr(block, name).tobytes() for name in ARRAYS), _dumps(hosts))


def task_rows(job_id: int, block: Block, tasks: set[int]) -> list[tuple[Any, ...]]:
    rows = []
    for i in tasks:
        h = block.hosts[i]
        rows.append(
            (
                job_id,
                block.index,
                i,
                block.states[i],
                block.starts[i],
                block.errors[i],
                block.time_start[i],
                block.time_done[i],
                block.host_names[h] if h >= 0 else "",
            )
        )
    return rows


def restore_job(
    row: tuple[Any, ...],
    blocks: list[tuple[Any, ...]],
    tasks: list[tuple[Any, ...]],
    user: User,
    progress_timeout: int,
    now: float,
) -> Job:
    """Rebuild a job from its rows: the submission first, through the same checks as any
    submission, then the server's figures and the task arrays on top.

    `blocks` rows: (block index, definition, meta, *arrays, hosts); `tasks`: overlay rows.
    A mask that was accepted when stored but is refused now (RE2 has no lookarounds, masks
    have size caps) is dropped and the job paused, with a log line, so that the server
    starts and the job does not run on hosts its mask was meant to keep it off."""
    job_id, name, _user_name, _done, data_text = row
    data = json.loads(data_text)
    body = {**data["params"], "blocks": [json.loads(b[1]) for b in blocks]}
    dropped: list[str] = []
    while True:
        try:
            job = build_job(
                body,
                job_id=job_id,
                user=user,
                now=data["time_creation"],
                progress_timeout=progress_timeout,
                restoring=True,
            )
            break
        except Invalid as exc:
            if not drop_mask(body, exc.path):
                raise
            dropped.append(str(exc))
    job.name = name
    job.serial = data["serial"]
    job.branch = data["branch"]
    job.paused = data["paused"] or bool(dropped)
    for refusal in dropped:
        job.add_log(now, f"paused: a mask stored before is refused now and was dropped: {refusal}")
    job.deleting = data["deleting"]
    job.waiting_pre = set(data.get("waiting_pre", ()))
    job.pre_failed = data.get("pre_failed", False)
    job.time_started = data["time_started"]
    job.time_done = data["time_done"]
    job.submit_key = data.get("submit_key", "")
    for block_id, _definition, meta_text, *blobs, hosts_text in blocks:
        block = job.blocks[block_id]
        meta = json.loads(meta_text)
        block.time_started = meta["time_started"]
        block.run_time_sum = meta["run_time_sum"]
        block.error_hosts = meta["error_hosts"]
        for name_, blob in zip(ARRAYS, blobs, strict=True):
            arr = array(getattr(block, name_).typecode)
            arr.frombytes(blob)
            setattr(block, name_, arr)
        block.hosts = array("i", (block.host_id(h) if h else -1 for h in json.loads(hosts_text)))
    for _job_id, block_id, i, state, starts, errs, t_start, t_done, host in tasks:
        block = job.blocks[block_id]
        block.states[i] = state
        block.starts[i] = starts
        block.errors[i] = errs
        block.time_start[i] = t_start
        block.time_done[i] = t_done
        block.hosts[i] = block.host_id(host) if host else -1
        block.delta_rows += 1
    for block in job.blocks:
        block.recount()
    return job


_MASK_PATH = re.compile(r"job\.(?:blocks\[(\d+)\]\.)?(\w*mask\w*)")


def drop_mask(body: dict[str, Any], path: str) -> bool:
    """Remove the mask that `path` (`job.blocks[1].hosts_mask`) names; False if it names
    something else, which no restore can mend."""
    found = _MASK_PATH.fullmatch(path)
    if found is None:
        return False
    block, key = found.groups()
    node = body if block is None else body["blocks"][int(block)]
    return node.pop(key, None) is not None
