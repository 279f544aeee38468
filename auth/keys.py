"""The key store: the server's CURVE keypair and the authorised clients' public keys.

Layout of the keys folder (``af_auth_keys_folder``, by default ``<store>/keys``)::

    server.key           the server's public certificate (clients need a copy)
    server.key_secret    the server's secret certificate (mode 0600; afserver's processes)
    clients/NAME.key     one authorised public key per name: the name is who the key proves
    tokens.json          web API tokens, hashed (auth/tokens.py)

Certificates are pyzmq's (``zmq.auth.create_certificates``). A client's secret certificate
is written once, outside the folder, for the admin to hand over; the server never keeps it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import zmq.auth

SERVER = "server"
SERVER_USER = "afadmin"  # the name the server's own key proves (its processes)
CLIENTS = "clients"
CLIENT_SECRET = "client.key_secret"  # the file names a client looks for in ~/.afanasy
SERVER_PUBLIC = "server.key"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class AuthError(Exception):
    """A key that is missing, unreadable or refused; the message says which and what to do."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    """z85-encoded keys, as libzmq takes them."""

    public: bytes
    secret: bytes


def check_name(name: str) -> str:
    """Key names become user names and file names: plain, short, not reserved."""
    if not _NAME.fullmatch(name):
        raise AuthError(
            f"bad key name {name!r}: letters, digits and . _ @ - only, at most 64, "
            "starting with a letter or digit"
        )
    if name in (SERVER, SERVER_USER):
        raise AuthError(f"{name!r} is reserved for the server's own key")
    return name


def fingerprint(public: bytes) -> str:
    """A short stable label for a public key, to list and log keys without showing them."""
    return hashlib.sha256(public).hexdigest()[:12]


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


def _load(path: Path, secret: bool) -> KeyPair:
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise AuthError(f"cannot read the key certificate {path}: {exc}") from None
    if secret and not secret_key:
        raise AuthError(f"{path} holds no secret key (a .key_secret file is needed)")
    return KeyPair(public, secret_key or b"")


def server_keys(folder: Path) -> KeyPair:
    """The server's keypair; afserver creates it at its first start with af_auth = curve."""
    path = folder / f"{SERVER}.key_secret"
    if not path.is_file():
        raise AuthError(f"no server key in {folder} (afserver creates it when af_auth is 'curve')")
    return _load(path, secret=True)


def ensure_server_keys(folder: Path) -> KeyPair:
    """The server's keypair, created on first use."""
    if not (folder / f"{SERVER}.key_secret").is_file():
        _private_dir(folder)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            public, secret = zmq.auth.create_certificates(tmp, SERVER)
            os.chmod(secret, 0o600)
            os.replace(public, folder / f"{SERVER}.key")
            os.replace(secret, folder / f"{SERVER}.key_secret")
    return server_keys(folder)


def create_client(folder: Path, name: str, out: Path, force: bool = False) -> Path:
    """A keypair for `name`: the public key is authorised here, the secret certificate and a
    copy of the server's public one go to `out` for the user or render host."""
    check_name(name)
    ensure_server_keys(folder)
    authorised = folder / CLIENTS / f"{name}.key"
    secret_out = out / CLIENT_SECRET
    if not force:
        for path in (authorised, secret_out):
            if path.exists():
                raise AuthError(f"{path} exists; use --force to replace it")
    _private_dir(folder / CLIENTS)
    _private_dir(out)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        public, secret = zmq.auth.create_certificates(tmp, name)
        os.chmod(secret, 0o600)
        shutil.move(secret, secret_out)
        os.replace(public, authorised)
    shutil.copyfile(folder / f"{SERVER}.key", out / SERVER_PUBLIC)
    return secret_out


def remove_client(folder: Path, name: str) -> None:
    path = folder / CLIENTS / f"{check_name(name)}.key"
    if not path.is_file():
        raise AuthError(f"no key named {name!r} in {folder / CLIENTS}")
    path.unlink()


def authorised(folder: Path) -> dict[bytes, str]:
    """Public key -> the name it proves: the server's own key, and every client key."""
    keys: dict[bytes, str] = {}
    with contextlib.suppress(AuthError):
        keys[server_keys(folder).public] = SERVER_USER
    clients = folder / CLIENTS
    if clients.is_dir():
        for path in sorted(clients.glob("*.key")):
            with contextlib.suppress(AuthError):
                keys[_load(path, secret=False).public] = path.stem
    return keys


def listing(folder: Path) -> list[tuple[str, str]]:
    """(name, fingerprint) of every authorised key, server first."""
    return sorted(
        ((name, fingerprint(public)) for public, name in authorised(folder).items()),
        key=lambda item: (item[0] != SERVER_USER, item[0]),
    )


def client_keys(secret_file: Path, server_file: Path) -> tuple[KeyPair, bytes]:
    """A client's own keypair and the server's public key, from their certificate files."""
    for path, what in ((secret_file, "af_auth_key_file"), (server_file, "af_auth_server_key_file")):
        if not path.is_file():
            raise AuthError(
                f"af_auth is 'curve' but {path} ({what}) does not exist: an admin creates a "
                "key with 'afcmd keys create NAME' on the server; put both files in ~/.afanasy"
            )
    return _load(secret_file, secret=True), _load(server_file, secret=False).public
