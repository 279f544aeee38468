"""Job commands: submit, list, show, why, act on jobs by mask."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import click

from afcmd import listing
from afcmd.cli import Context, cli, echo_json
from afcmd.show import table


def job_selector(ref: str) -> dict[str, Any]:
    """A job id, or a regular expression matching whole job names."""
    return {"ids": [int(ref)]} if ref.isdigit() else {"mask": ref}


def job_and_block(obj: Context, job: str, block: str) -> tuple[int, int]:
    """(job id, block index) for a block given by its index or its name."""
    if block.isdigit():
        return _one_job(obj, job, "list")["id"], int(block)
    data = _one_job(obj, job, "full")
    for index, found in enumerate(data["blocks"]):
        if found["name"] == block:
            return data["id"], index
    names = ", ".join(f"{i} '{b['name']}'" for i, b in enumerate(data["blocks"]))
    raise click.ClickException(f"job {data['id']} has no block '{block}' (its blocks: {names})")


def _jobs(obj: Context, selector: dict[str, Any], mode: str = "list") -> list[dict[str, Any]]:
    return obj.request({"get": {"type": "jobs", "mode": mode, **selector}})["jobs"]


def _one_job(obj: Context, ref: str, mode: str) -> dict[str, Any]:
    selector = {"ids": [int(ref)]} if ref.isdigit() else {"mask": re.escape(ref)}
    jobs = _jobs(obj, selector, mode)
    if not jobs:
        click.echo(f"afcmd: no job '{ref}'", err=True)
        sys.exit(1)
    return jobs[0]


@cli.group("job")
def job_group() -> None:
    """Submit jobs; every key of the job format (afcmd job keys)."""


@job_group.command("submit")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.pass_obj
def submit(obj: Context, file: Any) -> None:
    """Submit a job from a JSON FILE ("-" or nothing: standard input).

    The file holds {"job": {...}} or the job object itself, with the original's keys
    (every key, its type, default and meaning: afcmd job keys).

    \b
    A minimal job, one list block of one task:
      echo '{"name": "hello", "blocks": [{"tasks": [{"command": "echo hi"}]}]}' \\
        | afcmd job submit
    \b
    A numeric block (flags 1): frames 1-100, 10 a task, @#@ the task's frames:
      {"name": "shot_010", "blocks": [{"name": "render", "flags": 1,
        "frame_first": 1, "frame_last": 100, "frames_per_task": 10,
        "command": "blender -b scene.blend -s @#@ -e @#@ -a"}]}
    \b
    Only on renders whose names start with farm or ws (a find mask; set
    "hosts_mask_type": "regex" for a regular expression):
      {"name": "comp", "hosts_mask": "farm ws",
       "blocks": [{"tasks": [{"command": "nuke -x comp.nk"}]}]}"""
    try:
        data = json.load(file)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{file.name}: not valid JSON: {exc}") from exc
    if isinstance(data, dict) and "job" in data and isinstance(data["job"], dict):
        data = data["job"]
    reply = obj.submit(data)
    click.echo(f"job {reply['id']} '{reply['name']}' submitted (serial {reply['serial']})")


@job_group.command("keys")
@click.argument("level", type=click.Choice(["job", "block", "task"]), required=False)
@click.option("--json", "as_json", is_flag=True)
def job_keys(level: str | None, as_json: bool) -> None:
    """Every key of a job, block or task (all three without LEVEL): type, default, meaning.

    Read from the server's own submission schemas, so what is listed is what it accepts."""
    from workers.scheduler.jobformat import LEVELS, keys

    levels = [level] if level else list(LEVELS)
    if as_json:
        echo_json({name: [k._asdict() for k in keys(name)] for name in levels})
        return
    for i, name in enumerate(levels):
        if i:
            click.echo()
        click.echo(f"{name} keys:")
        rows = [[k.name, k.type, k.default, k.meaning] for k in keys(name)]
        click.echo(table(["KEY", "TYPE", "DEFAULT", "MEANING"], rows))


@cli.command("jappend")
@click.argument("job")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--block", help="Append tasks to this block (index or name), not blocks.")
@click.pass_obj
def jappend(obj: Context, job: str, file: Any, block: str | None) -> None:
    """Add blocks, or tasks of one list block (--block), to a JOB that exists, running or
    done: a done job is ready again. FILE ("-": standard input) holds a JSON list of blocks
    (or tasks) as in a submission, or {"blocks": [...]} / {"tasks": [...]}."""
    try:
        data = json.load(file)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{file.name}: not valid JSON: {exc}") from exc
    key = "tasks" if block is not None else "blocks"
    if isinstance(data, dict) and isinstance(data.get(key), list):
        data = data[key]
    if not isinstance(data, list):
        raise click.ClickException(f"{file.name}: expected a JSON list of {key}")
    act: dict[str, Any] = {"type": "jobs", "operation": {"type": f"append_{key}", key: data}}
    if block is not None:
        job_id, index = job_and_block(obj, job, block)
        act.update(ids=[job_id], block_ids=[index])
    else:
        act["ids"] = [_one_job(obj, job, "list")["id"]]
    click.echo(obj.request({"action": act})["info"]["text"])


@cli.command("jlist")
@click.argument("mask", required=False)
@click.option("--user", "users", multiple=True, help="Only jobs of this user (repeatable).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def jlist(obj: Context, mask: str | None, users: tuple[str, ...], as_json: bool) -> None:
    """List jobs (MASK: regular expression over whole names)."""
    selector: dict[str, Any] = {"mask": mask} if mask else {}
    if users:
        selector["users"] = list(users)
    jobs = _jobs(obj, selector)
    if as_json:
        echo_json(jobs)
        return
    rows = [listing.job_row(j) for j in jobs]
    click.echo(table(["ID", "NAME", "USER", "STATE", "PRI", "DONE", "RUN", "ERR", "%"], rows))
    if note := listing.jobs_note(jobs):
        click.echo(note)


@cli.command("jshow")
@click.argument("job")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def jshow(obj: Context, job: str, as_json: bool) -> None:
    """Show one job (id or exact name) with its blocks and log."""
    data = _one_job(obj, job, "full")
    if as_json:
        echo_json(data)
        return
    click.echo(
        f"job {data['id']} '{data['name']}' user {data['user_name']} state {data['state']} priority {data['priority']}"
    )
    click.echo(
        f"  tasks {data['tasks_done']}/{data['tasks_num']} done, {data['tasks_running']} running, {data['tasks_error']} error"
    )
    rows = [
        [
            index,
            b["name"],
            b["service"],
            b["state"],
            b["tasks_num"],
            b["p_tasks_done"],
            b["p_tasks_running"],
            b["p_tasks_error"],
            f"{b['p_percentage']}%",
        ]
        for index, b in enumerate(data["blocks"])
    ]
    if "system" in data:  # the system job: its blocks are command queues
        rows = [
            [i, b["name"], b["service"], b["queued"], b["live_tasks"], b["running"], b["tasksmax"]]
            for i, b in enumerate(data["system"])
        ]
        headers = ["#", "BLOCK", "SERVICE", "QUEUED", "LIVE TASKS", "RUNNING", "TASKSMAX"]
        click.echo(table(headers, rows))
    else:
        headers = ["#", "BLOCK", "SERVICE", "STATE", "TASKS", "DONE", "RUN", "ERR", "%"]
        click.echo(table(headers, rows))
    click.echo("log:\n  " + "\n  ".join(data["log"]))


@cli.command("jwhy")
@click.argument("job")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def jwhy(obj: Context, job: str, as_json: bool) -> None:
    """Why a job (id or exact name) is not running, in plain words."""
    data = _one_job(obj, job, "why")
    if as_json:
        echo_json(data["why"])
    else:
        click.echo(data["why_text"])


@cli.command("jlog")
@click.argument("job")
@click.pass_obj
def jlog(obj: Context, job: str) -> None:
    """Print a job's log."""
    click.echo("\n".join(_one_job(obj, job, "log")["log"]))


def _operation(obj: Context, mask: str, operation: str) -> None:
    reply = obj.request(
        {"action": {"type": "jobs", **job_selector(mask), "operation": {"type": operation}}}
    )
    click.echo(reply["info"]["text"])


def _params(obj: Context, mask: str, params: dict[str, Any]) -> None:
    reply = obj.request({"action": {"type": "jobs", **job_selector(mask), "params": params}})
    click.echo(reply["info"]["text"])


for _name, _op, _help in (
    ("jpause", "pause", "Pause jobs: no new tasks start."),
    ("jstart", "start", "Start (unpause) jobs."),
    ("jstop", "stop", "Stop jobs: running tasks back to ready, and pause."),
    ("jrestart", "restart", "Restart every task of jobs."),
    ("jrestarterrors", "restart_errors", "Restart the error tasks of jobs."),
    ("jdel", "delete", "Delete jobs (running tasks are stopped first)."),
):

    def _command(obj: Context, mask: str, _op: str = _op) -> None:
        _operation(obj, mask, _op)

    _command.__doc__ = _help + " MASK: job id or regular expression over whole names."
    cli.command(_name)(click.argument("mask")(click.pass_obj(_command)))


@cli.command("jpri")
@click.argument("mask")
@click.argument("priority", type=click.IntRange(0, 255))
@click.pass_obj
def jpri(obj: Context, mask: str, priority: int) -> None:
    """Set jobs' priority."""
    _params(obj, mask, {"priority": priority})


@cli.command("jtmax")
@click.argument("mask")
@click.argument("count", type=click.IntRange(-1))
@click.pass_obj
def jtmax(obj: Context, mask: str, count: int) -> None:
    """Set jobs' max running tasks (-1: unlimited)."""
    _params(obj, mask, {"max_running_tasks": count})


@cli.command("jhmask")
@click.argument("mask")
@click.argument("hosts_mask")
@click.pass_obj
def jhmask(obj: Context, mask: str, hosts_mask: str) -> None:
    """Set jobs' hosts mask ("" clears it).

    \b
    How HOSTS_MASK is read is chosen at submission by the job's hosts_mask_type
    (the original's key; jhmask keeps it):
      find (the default)  a find mask: words a render's name starts with, split by
                          spaces or | ; , : — 'farm ws' runs on farm01, farm02 and
                          ws-anna; regex syntax is refused, naming hosts_mask_type
      regex               a regular expression over the whole name: 'farm0[1-4]'
    jwhy says which renders the mask keeps the job off, in these words."""
    _params(obj, mask, {"hosts_mask": hosts_mask})


@cli.command("brerrors")
@click.argument("mask")
@click.argument("block", required=False)
@click.pass_obj
def brerrors(obj: Context, mask: str, block: str | None) -> None:
    """Reset the error hosts of jobs' blocks (all, or BLOCK of one job, by name or index):
    renders avoided after errors may run them again. MASK: job id or regular expression."""
    action: dict[str, Any] = {"type": "jobs", **job_selector(mask)}
    if block is None:
        action["operation"] = {"type": "reset_error_hosts"}
    else:
        job_id, index = job_and_block(obj, mask, block)
        action = {"type": "jobs", "ids": [job_id], "block_ids": [index]}
        action["operation"] = {"type": "reset_error_hosts"}
    click.echo(obj.request({"action": action})["info"]["text"])
