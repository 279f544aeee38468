"""wolwake and wolsleep: the commands a render runs to wake others and to fall asleep."""

from __future__ import annotations

import shlex
import subprocess
import sys

import click

from wol.magic import magic_packet, parse_mac
from wol.network import broadcast_addresses, send

WOL_PORT = 9
LINUX_SLEEP = "echo mem > /sys/power/state"  # the original's wolsleep on Linux


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("macs", nargs=-1, required=True)
@click.option("--ip", default="", help="The sleeping host's address (for the log only).")
@click.option("--hostname", default="", help="The sleeping host's name (for the log only).")
@click.option(
    "--broadcast",
    "broadcasts",
    multiple=True,
    help="Send here instead of every interface's broadcast.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=WOL_PORT, show_default=True)
@click.option("--wake", is_flag=True, hidden=True, help="Accepted for the original's command line.")
def wolwake(
    macs: tuple[str, ...],
    ip: str,
    hostname: str,
    broadcasts: tuple[str, ...],
    port: int,
    wake: bool,
) -> None:
    """Wake hosts: a magic packet for each MAC to each IPv4 broadcast address."""
    try:
        packets = [magic_packet(parse_mac(m)) for m in macs]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="MAC") from exc
    targets = list(broadcasts) or [b for _, b in broadcast_addresses()]
    if not targets:
        raise click.ClickException("no interface with an IPv4 broadcast address: give --broadcast")
    try:
        sent = send(packets, targets, port)
    except OSError as exc:
        raise click.ClickException(f"sending magic packets failed: {exc}") from exc
    who = " ".join(x for x in (hostname, ip) if x) or "host"
    click.echo(
        f"wolwake {who}: {sent} magic packets ({len(packets)} MACs) to {', '.join(targets)} port {port}"
    )


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("macs", nargs=-1)
@click.option("--ip", default="")
@click.option("--hostname", default="")
@click.option("--command", default="", help=f"The sleep command (default on Linux: {LINUX_SLEEP}).")
@click.option("--dry-run", is_flag=True, help="Print what would be done; do not sleep.")
@click.option(
    "--sleep",
    "sleep_flag",
    is_flag=True,
    hidden=True,
    help="Accepted for the original's command line.",
)
def wolsleep(
    macs: tuple[str, ...], ip: str, hostname: str, command: str, dry_run: bool, sleep_flag: bool
) -> None:
    """Put this host to sleep (after the server asked it to), so that it can be woken by LAN."""
    if not command:
        if not sys.platform.startswith("linux"):
            raise click.ClickException(f"no sleep command known for {sys.platform}: give --command")
        command = LINUX_SLEEP
    who = " ".join(x for x in (hostname, ip) if x) or "this host"
    if dry_run:
        click.echo(f"wolsleep {who} ({' '.join(macs)}): would run: sh -c {shlex.quote(command)}")
        return
    done = subprocess.run(["/bin/sh", "-c", command], check=False)
    if done.returncode != 0:
        raise click.ClickException(f"sleep command exited with {done.returncode}: {command}")
