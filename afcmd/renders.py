"""Render commands: rlist, rlog."""

from __future__ import annotations

from typing import Any

import click

from afcmd import listing
from afcmd.cli import Context, cli, echo_json
from afcmd.show import table


def _selection(mask: str | None) -> dict[str, Any]:
    return {"mask": mask} if mask else {}


def _row(r: dict[str, Any]) -> list[object]:
    res = r.get("host_resources") or {}
    host = r.get("host") or {}
    cpu = f"{host.get('cpu_num', res.get('cpu_num', '?'))}x{host.get('cpu_mhz', res.get('cpu_mhz', '?'))}"
    mem = f"{res.get('mem_free_mb', '?')}/{res.get('mem_total_mb', host.get('mem_total_mb', '?'))}"
    load = res.get("cpu_loadavg") or []
    macs = ",".join(n.get("mac", "") for n in r.get("netifs", []))
    return [
        r["name"],
        r["id"],
        " ".join(r["state"]),
        r.get("user_name", ""),
        r.get("pool", ""),
        r.get("address", ""),
        cpu,
        mem,
        f"{load[0]:.2f}" if load else "-",
        macs or "-",
    ]


@cli.command("rlist")
@click.argument("mask", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def rlist(obj: Context, mask: str | None, as_json: bool) -> None:
    """List renders (MASK: a regular expression matching whole names)."""
    renders = obj.request({"get": {"type": "renders", "mode": "full", **_selection(mask)}})[
        "renders"
    ]
    if as_json:
        echo_json(renders)
        return
    headers = [
        "NAME",
        "ID",
        "STATE",
        "USER",
        "POOL",
        "ADDRESS",
        "CPU",
        "MEM FREE/TOTAL MB",
        "LOAD",
        "MACS",
    ]
    click.echo(table(headers, [_row(r) for r in listing.renders_in_order(renders)]))
    if note := listing.renders_note(renders):
        click.echo(note)


@cli.command("rlog")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def rlog(obj: Context, name: str, as_json: bool) -> None:
    """Print a render's log."""
    renders = obj.request({"get": {"type": "renders", "mode": "log", "names": [name]}})["renders"]
    if as_json:
        echo_json(renders)
        return
    for render in renders:
        click.echo("\n".join(render["log"]))


def _render_action(obj: Context, mask: str, body: dict[str, Any]) -> None:
    reply = obj.request({"action": {"type": "renders", "mask": mask, **body}})
    click.echo(reply["info"]["text"])


for _name, _body, _help in (
    ("rnimby", {"params": {"nimby": True}}, "Set renders nimby: only their owner's jobs run."),
    ("rNIMBY", {"params": {"NIMBY": True}}, "Set renders NIMBY: no jobs run."),
    ("rfree", {"params": {"nimby": False, "NIMBY": False}}, "Free renders from nimby and NIMBY."),
    ("rpause", {"params": {"paused": True}}, "Pause renders."),
    ("runpause", {"params": {"paused": False}}, "Unpause renders."),
    (
        "reject",
        {"operation": {"type": "eject_tasks"}},
        "Eject running tasks from renders (back to ready).",
    ),
    ("rheal", {"operation": {"type": "heal_sick"}}, "Heal sick renders (SIC)."),
    ("rsleep", {"operation": {"type": "wol_sleep"}}, "Put renders to sleep (wake-on-LAN)."),
    (
        "rwake",
        {"operation": {"type": "wol_wake"}},
        "Wake sleeping renders (a wake-on-lan system task).",
    ),
):

    def _command(obj: Context, mask: str, _body: dict[str, Any] = _body) -> None:
        _render_action(obj, mask, _body)

    _command.__doc__ = _help + " MASK: regular expression over whole render names."
    cli.command(_name)(click.argument("mask")(click.pass_obj(_command)))


@cli.command("rsrv")
@click.argument("mask")
@click.argument("mode", type=click.Choice(["add", "remove", "enable", "disable", "clear"]))
@click.argument("service", required=False, default="")
@click.pass_obj
def rsrv(obj: Context, mask: str, mode: str, service: str) -> None:
    """Change renders' services: add/remove to the allowed list, enable/disable, clear."""
    full = "clear_services" if mode == "clear" else f"service_{mode}"
    _render_action(obj, mask, {"operation": {"type": "farm", "mode": full, "name": service}})


@cli.command("rpri")
@click.argument("mask")
@click.argument("priority", type=click.IntRange(0, 255))
@click.pass_obj
def rpri(obj: Context, mask: str, priority: int) -> None:
    """Set renders' priority (0: never used)."""
    _render_action(obj, mask, {"params": {"priority": priority}})
