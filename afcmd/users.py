"""User commands."""

from __future__ import annotations

import click

from afcmd.cli import Context, cli, echo_json
from afcmd.show import table


@cli.command("ulist")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def ulist(obj: Context, as_json: bool) -> None:
    """List users."""
    users = obj.request({"get": {"type": "users"}})["users"]
    if as_json:
        echo_json(users)
        return
    rows = [
        [
            u["id"],
            u["name"],
            u["priority"],
            u["jobs_num"],
            u["running_tasks"],
            u["max_running_tasks"],
            u["host_name"],
        ]
        for u in users
    ]
    click.echo(table(["ID", "NAME", "PRI", "JOBS", "RUN", "MAXRUN", "HOST"], rows))


@cli.command("upri")
@click.argument("name")
@click.argument("priority", type=click.IntRange(0, 255))
@click.pass_obj
def upri(obj: Context, name: str, priority: int) -> None:
    """Set a user's priority."""
    reply = obj.request(
        {"action": {"type": "users", "names": [name], "params": {"priority": priority}}}
    )
    click.echo(reply["info"]["text"])
