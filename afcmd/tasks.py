"""Task commands: list, log, output, restart, skip."""

from __future__ import annotations

import sys
from typing import Any

import click

from afcmd.cli import Context, cli, echo_json
from afcmd.jobs import _one_job, job_and_block
from afcmd.show import table


def _tasks(obj: Context, job_id: int, mode: str = "list", **extra: Any) -> dict[str, Any]:
    return obj.request({"get": {"type": "tasks", "job_id": job_id, "mode": mode, **extra}})


BLOCK_HELP = "BLOCK: its name or index (afcmd jshow lists both)."


@cli.command("tlist")
@click.argument("job")
@click.option("--block", default=None, help="Only this block (name or index).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def tlist(obj: Context, job: str, block: str | None, as_json: bool) -> None:
    """List a job's tasks (JOB: id or exact name)."""
    if block is None:
        tasks = _tasks(obj, _one_job(obj, job, "list")["id"])["tasks"]
    else:
        job_id, index = job_and_block(obj, job, block)
        tasks = _tasks(obj, job_id, block_ids=[index])["tasks"]
    if as_json:
        echo_json(tasks)
        return
    rows = [
        [t["block_id"], t["task_id"], t["name"], t["state"], t["starts"], t["errors"], t["host"]]
        for t in tasks
    ]
    click.echo(table(["BLOCK", "TASK", "NAME", "STATE", "STARTS", "ERRORS", "HOST"], rows))


@cli.command("tlog")
@click.argument("job")
@click.argument("block")
@click.argument("task", type=int)
@click.pass_obj
def tlog(obj: Context, job: str, block: str, task: int) -> None:
    """Print a task's log. BLOCK: its name or index."""
    job_id, index = job_and_block(obj, job, block)
    (data,) = _tasks(obj, job_id, "log", block_ids=[index], task_ids=[task])["tasks"]
    click.echo("\n".join(data["log"]))


@cli.command("tout")
@click.argument("job")
@click.argument("block")
@click.argument("task", type=int)
@click.argument("start", type=int, default=0)
@click.pass_obj
def tout(obj: Context, job: str, block: str, task: int, start: int) -> None:
    """Print a task's output (START: which start, 1 the first; default the latest), also while it runs. BLOCK: its name or index."""
    job_id, index = job_and_block(obj, job, block)
    extra = {"block_ids": [index], "task_ids": [task], "attempt": start}
    (data,) = _tasks(obj, job_id, "output", **extra)["tasks"]
    sys.stdout.write(data["output"])
    if data["output"] and not data["output"].endswith("\n"):
        sys.stdout.write("\n")


def _task_op(obj: Context, job: str, block: str, tasks: tuple[int, ...], operation: str) -> None:
    job_id, index = job_and_block(obj, job, block)
    op: dict[str, Any] = {"type": operation}
    if tasks:
        op["task_ids"] = list(tasks)
    reply = obj.request(
        {"action": {"type": "jobs", "ids": [job_id], "block_ids": [index], "operation": op}}
    )
    click.echo(reply["info"]["text"])


@cli.command("trestart")
@click.argument("job")
@click.argument("block")
@click.argument("tasks", type=int, nargs=-1)
@click.pass_obj
def trestart(obj: Context, job: str, block: str, tasks: tuple[int, ...]) -> None:
    """Restart tasks of a block (all when none given). BLOCK: its name or index."""
    _task_op(obj, job, block, tasks, "restart")


@cli.command("tskip")
@click.argument("job")
@click.argument("block")
@click.argument("tasks", type=int, nargs=-1)
@click.pass_obj
def tskip(obj: Context, job: str, block: str, tasks: tuple[int, ...]) -> None:
    """Skip tasks of a block (all when none given). BLOCK: its name or index."""
    _task_op(obj, job, block, tasks, "skip")
