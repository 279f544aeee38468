"""Tokens for the web API: issued by ``afcmd token USER``, sent as ``Authorization: Bearer``.

Only a SHA-256 of each token is stored (``tokens.json`` in the keys folder, mode 0600): a
token is 32 random bytes, so a fast hash is enough and a stolen file proves nobody. The web
process verifies with ``TokenVerifier`` (re-reads the file when it changes) or, given a
table it loaded itself, with the pure ``verify``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auth.keys import AuthError, check_name

FILE = "tokens.json"
PREFIX = "aft_"  # recognisable in a leaked paste, and by secret scanners


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 256:
        return None
    return token


def verify(token: str | None, table: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The user a token was issued to, or None. ``table``: digest -> {"user", ...}."""
    if not token or not token.startswith(PREFIX) or len(token) > 256:
        return None
    wanted = digest(token)
    for known, entry in table.items():  # compare every digest in constant time
        if hmac.compare_digest(known, wanted):
            user = entry.get("user")
            return user if isinstance(user, str) and user else None
    return None


def load(folder: Path) -> dict[str, dict[str, Any]]:
    path = folder / FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise AuthError(f"cannot read {path}: {exc}") from None
    table = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise AuthError(f'{path}: expected {{"tokens": {{...}}}}')
    return {k: v for k, v in table.items() if isinstance(v, dict)}


def _save(folder: Path, table: Mapping[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tokens-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp: mode 0600
            json.dump({"tokens": table}, f, indent=1, sort_keys=True)
        os.replace(tmp, folder / FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def issue(folder: Path, user: str, now: float) -> str:
    """A new token for `user`; it is shown once, only its digest is kept."""
    check_name(user)
    token = PREFIX + secrets.token_urlsafe(32)
    table = load(folder)
    table[digest(token)] = {"user": user, "created": int(now)}
    _save(folder, table)
    return token


def revoke(folder: Path, user: str) -> int:
    """Drop every token of `user`; returns how many there were."""
    table = load(folder)
    kept = {k: v for k, v in table.items() if v.get("user") != user}
    if len(kept) != len(table):
        _save(folder, kept)
    return len(table) - len(kept)


def listing(folder: Path) -> list[tuple[str, int, str]]:
    """(user, created, id) per token; the id is a digest prefix, never the token."""
    return sorted(
        (v.get("user", "?"), int(v.get("created", 0)), k[:12]) for k, v in load(folder).items()
    )


class TokenVerifier:
    """For the web process: ``TokenVerifier(keys_folder)(authorization_header)`` -> user or
    None. The table is re-read when the file changes, so issued and revoked tokens count at
    once; a file that cannot be read verifies nobody."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE
        self.folder = folder
        self._stamp: tuple[int, int] | None = None
        self._table: dict[str, dict[str, Any]] = {}

    def __call__(self, authorization: str | None) -> str | None:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = (0, 0)
        if stamp != self._stamp:
            try:
                self._table = load(self.folder)
            except AuthError:
                self._table = {}
            self._stamp = stamp
        return verify(bearer(authorization), self._table)
