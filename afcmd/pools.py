"""Pool commands: list, add, delete, set parameters, services; moving renders between pools."""

from __future__ import annotations

from typing import Any

import click

from afcmd.cli import Context, cli, echo_json
from afcmd.show import table
from broker.validate import Field
from workers.scheduler.pools import PARAMS


def _pool_action(obj: Context, path: str, body: dict[str, Any]) -> None:
    reply = obj.request({"action": {"type": "pools", "names": [path], **body}})
    click.echo(reply["info"]["text"])


def parse_param(text: str) -> tuple[str, Any]:
    """KEY=VALUE with VALUE read as the parameter's type (int, number, bool, text)."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise click.BadParameter(f"expected KEY=VALUE, got {text!r}")
    spec: Field | None = PARAMS.get(key)
    if spec is None:
        raise click.BadParameter(
            f"unknown pool parameter {key!r}; known: {', '.join(sorted(PARAMS))}"
        )
    try:
        if spec.kind is bool:
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return key, raw.lower() in ("1", "true", "yes", "on")
        if spec.kind in (int, float):
            return key, spec.kind(raw)
    except ValueError as exc:
        raise click.BadParameter(f"{key}: expected {spec.kind.__name__}, got {raw!r}") from exc
    return key, raw


@cli.command("plist")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def plist(obj: Context, as_json: bool) -> None:
    """List pools with their renders and running tasks."""
    pools = obj.request({"get": {"type": "pools"}})["pools"]
    if as_json:
        echo_json(pools)
        return
    rows = [
        [
            p["path"],
            p["state"] or "-",
            p["priority"],
            p["pattern"],
            p["renders_total"],
            p["renders_online"],
            p["run_tasks"],
            ",".join(p["services"]) or "-",
        ]
        for p in pools
    ]
    click.echo(
        table(["POOL", "STATE", "PRI", "PATTERN", "RENDERS", "ONLINE", "RUN", "SERVICES"], rows)
    )


@cli.command("padd")
@click.argument("parent")
@click.argument("name")
@click.pass_obj
def padd(obj: Context, parent: str, name: str) -> None:
    """Add a pool NAME under PARENT (a pool path, "/" for the root)."""
    _pool_action(obj, parent, {"operation": {"type": "add_pool", "name": name}})


@cli.command("pdel")
@click.argument("path")
@click.pass_obj
def pdel(obj: Context, path: str) -> None:
    """Delete an empty pool."""
    _pool_action(obj, path, {"operation": {"type": "delete"}})


@cli.command("pset")
@click.argument("path")
@click.argument("params", nargs=-1, required=True)
@click.pass_obj
def pset(obj: Context, path: str, params: tuple[str, ...]) -> None:
    """Set pool parameters: KEY=VALUE ... (e.g. zombie_time=30 pattern='farm.*' paused=1)."""
    _pool_action(obj, path, {"params": dict(parse_param(p) for p in params)})


@cli.command("psrvadd")
@click.argument("path")
@click.argument("service")
@click.pass_obj
def psrvadd(obj: Context, path: str, service: str) -> None:
    """Allow a service in a pool (once a pool lists services, only those run below it)."""
    _pool_action(obj, path, {"operation": {"type": "farm", "mode": "service_add", "name": service}})


@cli.command("psrvdel")
@click.argument("path")
@click.argument("service")
@click.pass_obj
def psrvdel(obj: Context, path: str, service: str) -> None:
    """Remove a service from a pool's list."""
    _pool_action(
        obj, path, {"operation": {"type": "farm", "mode": "service_remove", "name": service}}
    )


@cli.command("rsetpool")
@click.argument("mask")
@click.argument("pool")
@click.pass_obj
def rsetpool(obj: Context, mask: str, pool: str) -> None:
    """Move renders (MASK: regular expression over whole names) into POOL."""
    reply = obj.request(
        {
            "action": {
                "type": "renders",
                "mask": mask,
                "operation": {"type": "set_pool", "name": pool},
            }
        }
    )
    click.echo(reply["info"]["text"])


@cli.command("ptickets")
@click.argument("path")
@click.argument("name")
@click.argument("count", type=click.IntRange(-1))
@click.pass_obj
def ptickets(obj: Context, path: str, name: str, count: int) -> None:
    """Host tickets for every render below a pool: COUNT of NAME per host (-1 removes)."""
    _pool_action(obj, path, {"operation": {"type": "tickets", "name": name, "count": count}})


@cli.command("rtickets")
@click.argument("mask")
@click.argument("name")
@click.argument("count", type=click.IntRange(-1))
@click.pass_obj
def rtickets(obj: Context, mask: str, name: str, count: int) -> None:
    """Host tickets of renders (MASK: regular expression over whole names); -1 removes."""
    op = {"type": "tickets", "name": name, "count": count}
    reply = obj.request({"action": {"type": "renders", "mask": mask, "operation": op}})
    click.echo(reply["info"]["text"])
