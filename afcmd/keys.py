"""Key and token commands: afcmd keys create/list/remove, afcmd token.

Like the db_* commands they work on the server's folder itself (af_auth_keys_folder, by
default <af_store_folder>/keys), so they run on the server host, as the user that runs
afserver; the server picks changes up without a restart. Nothing here prints a key or a
stored token: listings show fingerprints, and a new token is printed once, to its owner.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from afcmd.cli import EXIT_SERVER_ERROR, Context, cli
from afcmd.show import table
from auth import keys as K
from auth import tokens


def _folder(obj: Context, first_key: bool = False) -> Path:
    """The server's af_auth_keys_folder (asked of it), else the keys folder in its store
    folder; with no server answering, this host's settings, if that folder is there."""
    theirs = obj.server_path("af_auth_keys_folder")
    if theirs is None and obj.server_config() is None and obj.cfg["af_auth_keys_folder"]:
        theirs = Path(str(obj.cfg["af_auth_keys_folder"]))
    if theirs is not None:
        if not theirs.parent.is_dir():
            raise click.ClickException(f"the keys folder {theirs} is not on this host")
        return theirs
    return obj.store_folder(first_key) / "keys"


def _fail(exc: Exception) -> None:
    click.echo(f"afcmd: {exc}", err=True)
    sys.exit(EXIT_SERVER_ERROR)


@cli.group("keys")
def keys_group() -> None:
    """CURVE keys (af_auth = curve): who may connect, and as whom."""


@keys_group.command("create")
@click.argument("name")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the new secret key and the server's public key (default ./afanasy-keys-NAME).",
)
@click.option("--force", is_flag=True, help="Replace an existing key of this name.")
@click.pass_obj
def keys_create(obj: Context, name: str, out: Path | None, force: bool) -> None:
    """Authorise a new key for NAME: a user name, or a render's host name.

    Hand the two files written to --out to NAME's owner, for ~/.afanasy/ on their host."""
    out = out or Path(f"afanasy-keys-{name}")
    try:
        secret = K.create_client(_folder(obj, first_key=True), name, out, force)
    except (K.AuthError, OSError) as exc:
        _fail(exc)
        return
    click.echo(f"key for '{name}' authorised; its secret key is in {secret}")
    click.echo(
        f"copy {secret} and {out / K.SERVER_PUBLIC} to ~/.afanasy/ of '{name}' "
        "(or point af_auth_key_file / af_auth_server_key_file at them)"
    )


@keys_group.command("list")
@click.pass_obj
def keys_list(obj: Context) -> None:
    """Authorised keys: the name each proves, and a fingerprint (not the key)."""
    rows = [[name, fp] for name, fp in K.listing(_folder(obj))]
    click.echo(table(["NAME", "FINGERPRINT"], rows))


@keys_group.command("remove")
@click.argument("name")
@click.pass_obj
def keys_remove(obj: Context, name: str) -> None:
    """Withdraw NAME's key: new connections with it are refused."""
    try:
        K.remove_client(_folder(obj), name)
    except (K.AuthError, OSError) as exc:
        _fail(exc)
    click.echo(f"key '{name}' removed (connections made with it before stay until they drop)")


@cli.command("token")
@click.argument("user", required=False)
@click.option("--revoke", is_flag=True, help="Withdraw every token of USER instead.")
@click.option("--list", "as_list", is_flag=True, help="List tokens (users and ids, not tokens).")
@click.pass_obj
def token(obj: Context, user: str | None, revoke: bool, as_list: bool) -> None:
    """Issue a web API token for USER (printed once; only its hash is kept)."""
    folder = _folder(obj)
    try:
        if as_list:
            rows = [
                [u, time.strftime("%Y-%m-%d %H:%M", time.localtime(t)), i]
                for u, t, i in tokens.listing(folder)
            ]
            click.echo(table(["USER", "CREATED", "ID"], rows))
            return
        if not user:
            raise click.UsageError("name the USER (or --list)")
        if revoke:
            click.echo(f"{tokens.revoke(folder, user)} token(s) of '{user}' revoked")
            return
        click.echo(tokens.issue(folder, user, time.time()))
    except (K.AuthError, OSError) as exc:
        _fail(exc)
