"""Statistics database commands, as the original's: db_check, db_reset_*, db_updatetables.

They talk to the database itself (af_db_conninfo, else the store's stats.sqlite), like the
original's afcmd, so they work while afserver is down."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from afcmd.cli import EXIT_SERVER_ERROR, Context, cli
from config.loader import masked
from stats import stats_enabled
from stats.backends import Backend, SQLiteBackend, StatsError, open_backend


def _backend(obj: Context) -> Backend:
    """The statistics database the server writes: PostgreSQL by af_db_conninfo, else the
    server's store folder's stats.sqlite, which must be there (never made empty here)."""
    _same_database(obj)
    if str(obj.cfg["af_db_conninfo"]) or not stats_enabled(obj.cfg):
        return open_backend(obj.cfg)
    try:
        folder = obj.store_folder()
    except click.ClickException as exc:  # said as what was not checked, then why
        mine = Path(str(obj.cfg["af_store_folder"])) / "stats.sqlite"
        raise StatsError(f"no statistics database at {mine}: {exc.message}") from exc
    return SQLiteBackend(folder / "stats.sqlite", create=False)


def _same_database(obj: Context) -> None:
    """This host's af_db_conninfo must be the server's (compared as shown, passwords
    masked): a db_reset_* here must not drop the tables of some other database."""
    theirs = obj.server_config()
    if theirs is None or "af_db_conninfo" not in theirs:
        return  # no server to compare with: the database itself says what it is
    server_side = theirs["af_db_conninfo"]["value"]
    here = masked("af_db_conninfo", obj.cfg["af_db_conninfo"])
    if server_side != here:
        raise StatsError(
            f"the server's af_db_conninfo is {server_side!r} but this host's is {here!r} "
            f"({obj.cfg.sources.get('af_db_conninfo')}): set it to the server's "
            "(afcmd config --server-side)"
        )


def _fail(exc: StatsError) -> None:
    click.echo(f"afcmd: {exc}", err=True)
    sys.exit(EXIT_SERVER_ERROR)


@cli.command("db_check")
@click.pass_obj
def db_check(obj: Context) -> None:
    """Check the statistics database connection (and say which database)."""
    try:
        backend = _backend(obj)
        click.echo(f"{backend.describe()}: {backend.check()}")
    except StatsError as exc:
        _fail(exc)


def _reset(obj: Context, tables: list[str], yes: bool) -> None:
    try:
        backend = _backend(obj)
    except StatsError as exc:
        _fail(exc)
    if not yes:
        click.confirm(
            f"Drop and create {', '.join(tables)} in the statistics database {backend.describe()}?",
            abort=True,
        )
    try:
        backend.reset(tables)
    except StatsError as exc:
        _fail(exc)
    click.echo(f"tables recreated: {', '.join(tables)}")


YES = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")


@cli.command("db_reset_all")
@YES
@click.pass_obj
def db_reset_all(obj: Context, yes: bool) -> None:
    """Drop and recreate the jobs, tasks and logs tables."""
    _reset(obj, ["jobs", "tasks", "logs"], yes)


@cli.command("db_reset_jobs")
@YES
@click.pass_obj
def db_reset_jobs(obj: Context, yes: bool) -> None:
    """Drop and recreate the jobs table."""
    _reset(obj, ["jobs"], yes)


@cli.command("db_reset_tasks")
@YES
@click.pass_obj
def db_reset_tasks(obj: Context, yes: bool) -> None:
    """Drop and recreate the tasks table."""
    _reset(obj, ["tasks"], yes)


@cli.command("db_reset_logs")
@YES
@click.pass_obj
def db_reset_logs(obj: Context, yes: bool) -> None:
    """Drop and recreate the logs table."""
    _reset(obj, ["logs"], yes)


@cli.command("db_updatetables")
@click.pass_obj
def db_updatetables(obj: Context) -> None:
    """Create missing tables and add missing columns."""
    try:
        added = _backend(obj).update_tables()
    except StatsError as exc:
        _fail(exc)
    click.echo(f"added: {', '.join(added)}" if added else "tables are up to date")
