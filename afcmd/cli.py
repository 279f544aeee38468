"""afcmd: the command line tool. The root group holds the connection; commands live beside."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from afcmd.show import stat_summary
from auth import curve
from auth.keys import AuthError
from broker import protocol as P
from broker.client import Client, ClientError, NoAnswer, ServerError, caller_identity
from config import Config, ConfigError, load_config
from config.loader import format_shown, shown_config, sources_read

EXIT_SERVER_ERROR = 1  # the server answered with an error
EXIT_NO_SERVER = 3  # no answer in time
# errors that say the server could not take or keep a request, not that it refused it
_NOT_REFUSALS = (P.ErrorCode.LOST, P.ErrorCode.NO_SERVICE, P.ErrorCode.OVERLOADED)


@dataclass
class Context:
    """What every command needs: the configuration and a lazily opened connection."""

    cfg: Config
    server: str | None
    timeout: float | None
    admin: bool = False
    _client: Client | None = field(default=None, repr=False)
    _server_config: dict[str, Any] | None = field(default=None, repr=False)
    _no_server: str = field(default="", repr=False)

    @property
    def client(self) -> Client:
        if self._client is None:
            cfg = self.cfg
            try:
                servers = P.parse_servers(self.server or cfg["af_servername"], cfg["af_serverport"])
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--server") from exc
            timeout = self.timeout if self.timeout is not None else cfg["af_client_timeout"]
            try:
                keys = curve.client_keys(cfg)
            except AuthError as exc:
                raise click.ClickException(str(exc)) from exc
            self._client = Client(
                [P.endpoint(host, port) for host, port in servers],
                timeout,
                message_size_max=cfg["af_message_size_max"],
                curve=keys,
            )
        return self._client

    def request(self, body: dict[str, Any]) -> Any:
        if self.admin:
            body = {**body, "admin": True}
        return self._ask(lambda: self.client.request(body))

    def server_config(self) -> dict[str, Any] | None:
        """The server's configuration, secrets masked ({key: {"value", "source"}}); None
        when no server answers (or this host has no key to ask it with)."""
        if self._server_config is None:
            try:
                reply = self.client.request({"get": {"type": "config"}})  # refused: at once
                self._server_config = reply["config"]
            except ClientError as exc:
                self._no_server = str(exc)
                return None
            except click.ClickException as exc:
                self._no_server = exc.message
                return None
        return self._server_config

    def server_path(self, key: str) -> Path | None:
        """A path setting of the server's ("" or no server: None)."""
        theirs = self.server_config()
        value = theirs.get(key, {}).get("value") if theirs is not None else None
        return Path(str(value)) if value else None

    def store_folder(self, first_key: bool = False) -> Path:
        """The server's store folder, asked of the server: a token, key or statistics check
        made here must be where the server looks (make run keeps its store in ./var/store,
        not in afcmd's default). A folder that is not there is refused, except for a CURVE
        farm's first key (`first_key`), made before afserver first starts: then it is this
        host's af_store_folder, said so."""
        mine = Path(str(self.cfg["af_store_folder"]))
        theirs = self.server_path("af_store_folder")
        if theirs is None:
            source = self.cfg.sources.get("af_store_folder")
            if mine.is_dir() or first_key:
                click.echo(
                    f"afcmd: no server answered; this host's af_store_folder {mine} ({source})"
                    + ("" if mine.is_dir() else ": afserver must start with the same"),
                    err=True,
                )
                return mine
            raise click.ClickException(
                f"no server answered to say where its store folder is ({self._no_server}), "
                f"and this host's af_store_folder {mine} ({source}) does not exist: start afserver, "
                "or set af_store_folder (AF_STORE_FOLDER) to its store (make run: ./var/store)"
            )
        if not theirs.is_dir():
            raise click.ClickException(
                f"the server's store folder {theirs} is not on this host: run this command "
                "on the server's host"
            )
        if theirs != mine:
            click.echo(f"afcmd: the server's store folder {theirs} (here: {mine})", err=True)
        return theirs

    def submit(self, job: dict[str, Any]) -> Any:
        """A submission, sent again under its idempotency key if the server may not have
        taken it (Client.submit): a retry never makes a second job."""
        extra = {"admin": True} if self.admin else {}
        return self._ask(lambda: self.client.submit(job, **extra))

    def call(self, msg_type: int, body: Any) -> Any:
        return self._ask(lambda: self.client.call(msg_type, body))

    @staticmethod
    def _ask(send: Any) -> Any:
        try:
            return send()
        except NoAnswer as exc:
            click.echo(f"afcmd: {exc}", err=True)
            sys.exit(EXIT_NO_SERVER)
        except ServerError as exc:
            what = "server" if exc.code in _NOT_REFUSALS else "server refused"
            click.echo(f"afcmd: {what}: {exc.text}", err=True)
            sys.exit(EXIT_SERVER_ERROR)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


# `afcmd --help` by what a wrangler is about to do, each group with an example
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "Jobs",
        "afcmd jwhy shot_010    (why is it not running?)",
        ("job", "jlist", "jshow", "jwhy", "jlog", "jpause", "jstart", "jstop", "jrestart",
         "jrestarterrors", "jdel", "jpri", "jtmax", "jhmask", "brerrors", "jappend"),
    ),
    (
        "Tasks",
        "afcmd tout shot_010 0 3    (output of block 0, task 3)",
        ("tlist", "tout", "tlog", "trestart", "tskip"),
    ),
    (
        "Renders",
        "afcmd --admin rpause 'farm0[1-4]'",
        ("rlist", "rlog", "rnimby", "rNIMBY", "rfree", "rpause", "runpause", "reject", "rheal",
         "rpri", "rsrv", "rtickets", "rsetpool", "rsleep", "rwake"),
    ),
    (
        "Pools",
        "afcmd --admin padd / gpu",
        ("plist", "padd", "pdel", "pset", "psrvadd", "psrvdel", "ptickets"),
    ),
    ("Users", "afcmd --admin upri alice 150", ("ulist", "upri")),
    (
        "Server and statistics",
        "afcmd store_check",
        ("stat", "store_check", "store_copy", "config", "db_check", "db_updatetables", "db_reset_jobs",
         "db_reset_tasks", "db_reset_logs", "db_reset_all"),
    ),
    ("Access (af_auth = curve)", "afcmd keys create alice --out /tmp/alice", ("keys", "token")),
)  # fmt: skip


class SectionedGroup(click.Group):
    """Commands listed by section, each with its whole first line of help."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed: set[str] = set()
        for title, example, names in SECTIONS:
            rows = [
                (n, self.commands[n].get_short_help_str(200)) for n in names if n in self.commands
            ]
            listed.update(names)
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
                    formatter.write(f"{'':>{formatter.current_indent}}e.g. {example}\n")
        rest = [(n, c.get_short_help_str(200)) for n, c in sorted(self.commands.items())]
        rest = [row for row in rest if row[0] not in listed]
        if rest:
            with formatter.section("Other"):
                formatter.write_dl(rest)


@click.group(cls=SectionedGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--server",
    default=None,
    metavar="HOST[:PORT]",
    help="Server (default af_servername:af_serverport).",
)
@click.option(
    "--timeout", type=float, default=None, help="Seconds to wait for an answer (af_client_timeout)."
)
@click.option(
    "--admin",
    is_flag=True,
    help="Ask for the admin role (granted to af_admins): other users' jobs, renders, pools.",
)
@click.pass_context
def cli(ctx: click.Context, server: str | None, timeout: float | None, admin: bool) -> None:
    """Afanasy command line tool."""
    try:
        cfg = load_config()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    ctx.obj = Context(cfg, server, timeout, admin)
    ctx.call_on_close(lambda: ctx.obj._client and ctx.obj._client.close())


@cli.command("config")
@click.option(
    "--server-side",
    is_flag=True,
    help="The server's configuration (as its scheduler resolved it), not afcmd's.",
)
@click.pass_obj
def config_cmd(obj: Context, server_side: bool) -> None:
    """Print afcmd's configuration (or the server's) and where each value came from.

    Without --server-side: afcmd's own, as resolved on this host for this user, which may
    differ from the server's (make run sets AF_STORE_FOLDER=./var/store for the server
    only). Secrets (passwords, tokens) are shown as ***."""
    if server_side:
        shown = obj.request({"get": {"type": "config"}})["config"]
        whose = f"afserver's configuration (its scheduler at {obj.client.endpoint})"
    else:
        shown = shown_config(obj.cfg)
        whose = f"afcmd's own configuration on this host (user {caller_identity()['user_name']})"
    read = sources_read(shown)
    click.echo(f"# {whose}; secrets shown as ***")
    click.echo(
        "# read from: " + (", ".join(read) if read else "nothing: every value is the default")
    )
    if not server_side:
        click.echo("# the server's: afcmd config --server-side")
    click.echo(format_shown(shown))


@cli.command("stat")
@click.option("--json", "as_json", is_flag=True, help="Every counter, as JSON.")
@click.pass_obj
def stat(obj: Context, as_json: bool) -> None:
    """The server at a glance: uptime, farm, store, reply times, errors."""
    broker = obj.call(P.MsgType.BROKER_STAT, {})
    scheduler = obj.request({"get": {"type": "stat"}})
    if as_json:
        echo_json({**broker, **scheduler})
    else:
        click.echo(stat_summary(broker.get("broker", {}), scheduler.get("scheduler", {})))


@cli.command("store_check")
@click.pass_obj
def store_check(obj: Context) -> None:
    """The server's store: size, row counts and SQLite's integrity check, as JSON."""
    reply = obj.request({"get": {"type": "store"}})["store"]
    echo_json(reply)
    if reply["integrity"] != "ok":
        sys.exit(EXIT_SERVER_ERROR)


def main() -> None:
    from afcmd import db, jobs, keys, pools, renders, store, tasks, users  # noqa: F401  (they register their commands)

    cli()


if __name__ == "__main__":
    main()
