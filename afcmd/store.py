"""`afcmd store_copy`: a farm's SQLite store moved to PostgreSQL (af_store_db), one command."""

from __future__ import annotations

import sys

import click

from afcmd.cli import EXIT_SERVER_ERROR, Context, cli, echo_json


@cli.command("store_copy")
@click.option(
    "--to", "conninfo", default=None, help="PostgreSQL connection string (default: af_store_db)."
)
@click.option(
    "--from",
    "folder",
    default=None,
    help="Store folder of the SQLite store (default: af_store_folder).",
)
@click.pass_obj
def store_copy(obj: Context, conninfo: str | None, folder: str | None) -> None:
    """Copy the SQLite store into an empty PostgreSQL store; run with afserver stopped."""
    from workers.scheduler.store import StoreError
    from workers.scheduler.storecopy import copy_store

    target = conninfo or str(obj.cfg["af_store_db"] or "")
    if not target:
        raise click.BadParameter("give --to or set af_store_db", param_hint="--to")
    try:
        echo_json(copy_store(folder or str(obj.cfg["af_store_folder"]), target))
    except StoreError as exc:
        click.echo(f"afcmd: {exc}", err=True)
        sys.exit(EXIT_SERVER_ERROR)
