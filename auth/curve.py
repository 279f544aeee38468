"""CURVE on the farm's sockets: which keys a process uses, and the broker's ZAP handler.

With ``af_auth`` = "curve" the broker's ROUTER is a CURVE server. A connecting peer proves a
key; pyzmq's ThreadAuthenticator asks ``KeyAuthenticator`` whether the key is authorised
and which name it proves, and libzmq stamps that name on every message of the connection as
its ``User-Id`` property. An unknown key fails the handshake: its peer gets no service at
all, and the broker's loop never sees it.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq
from zmq.utils import z85

from auth import keys as K
from auth.modes import CURVE, MODES

ZAP_DOMAIN = "afanasy"
REFUSAL_LOG_SEC = 10.0  # one log line per unknown key per this many seconds

log = logging.getLogger("auth")


@dataclass(frozen=True, slots=True)
class ClientKeys:
    """What a client's DEALER needs: its own keypair and the server's public key."""

    own: K.KeyPair
    server_public: bytes


HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


def handshake_trouble(events: int, has_keys: bool) -> str | None:
    """Why a client's connection never got through, from its socket monitor's event bits."""
    if events & zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return "the server refused this client's key: it is not authorised (afcmd keys list)"
    if events & HANDSHAKE_FAILED and not has_keys:
        return "the server wants a key (af_auth) and this client has none"
    if events & HANDSHAKE_FAILED:
        return (
            "the handshake failed: does the server use keys (af_auth), and is "
            "af_auth_server_key_file the server's public key?"
        )
    return None


def mode(cfg: Any) -> str:
    value = str(cfg["af_auth"]).strip().lower()
    if value not in MODES:
        raise K.AuthError(f"af_auth must be '' (trusted) or 'curve', got {cfg['af_auth']!r}")
    return value


def keys_folder(cfg: Any) -> Path:
    return Path(str(cfg["af_auth_keys_folder"] or Path(str(cfg["af_store_folder"])) / "keys"))


def client_keys(cfg: Any) -> ClientKeys | None:
    """This client's keys when the site uses CURVE; None in the trusted mode."""
    if mode(cfg) != CURVE:
        return None
    home = Path.home() / ".afanasy"
    secret = Path(str(cfg["af_auth_key_file"] or home / K.CLIENT_SECRET))
    server = Path(str(cfg["af_auth_server_key_file"] or home / K.SERVER_PUBLIC))
    own, server_public = K.client_keys(secret, server)
    return ClientKeys(own, server_public)


def server_child_env(folder: Path) -> dict[str, str]:
    """The server's own processes connect with the server's key (they prove 'afadmin')."""
    return {
        "AF_AUTH_KEYS_FOLDER": str(folder),
        "AF_AUTH_KEY_FILE": str(folder / f"{K.SERVER}.key_secret"),
        "AF_AUTH_SERVER_KEY_FILE": str(folder / f"{K.SERVER}.key"),
    }


def secure_client(socket: zmq.Socket, keys: ClientKeys | None) -> None:
    """Make a DEALER a CURVE client; call before connect. No keys: the trusted mode."""
    if keys is None:
        return
    socket.curve_secretkey = keys.own.secret
    socket.curve_publickey = keys.own.public
    socket.curve_serverkey = keys.server_public


def secure_server(socket: zmq.Socket, own: K.KeyPair) -> None:
    """Make the broker's ROUTER a CURVE server; call before bind."""
    socket.zap_domain = ZAP_DOMAIN.encode()
    socket.curve_secretkey = own.secret
    socket.curve_publickey = own.public
    socket.curve_server = True


class KeyRegistry:
    """Authorised keys, re-read when the keys folder changes (afcmd keys create / remove),
    so a new key works without a restart. Used on handshakes only, never per message."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._stamp: tuple[float, ...] = ()
        self._keys: dict[bytes, str] = {}
        self._refused: dict[bytes, float] = {}
        # fingerprints of refused keys, as often as they are logged, for the broker's loop to
        # pass on to the logs table (appended on the authenticator's thread; deque is safe)
        self.refusals: deque[str] = deque(maxlen=1000)

    def _current(self) -> dict[bytes, str]:
        stamp = tuple(
            _mtime(p) for p in (self.folder, self.folder / K.CLIENTS, self.folder / "server.key")
        )
        if stamp != self._stamp:
            self._keys = K.authorised(self.folder)
            self._stamp = stamp
        return self._keys

    def user(self, public_z85: bytes) -> str | None:
        name = self._current().get(public_z85)
        if name is None:
            now = time.monotonic()
            if now - self._refused.get(public_z85, -REFUSAL_LOG_SEC) >= REFUSAL_LOG_SEC:
                self._refused[public_z85] = now
                if len(self._refused) > 10_000:
                    self._refused.clear()
                fingerprint = K.fingerprint(public_z85)
                log.warning(
                    "refused a connection: key %s is not authorised (afcmd keys list)",
                    fingerprint,
                )
                self.refusals.append(fingerprint)
        return name

    # the ThreadAuthenticator's credentials provider interface
    def callback(self, domain: str, key: bytes) -> bool:
        return self.user(key) is not None


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime_ns / 1e9
    except OSError:
        return 0.0


if TYPE_CHECKING:
    from zmq.auth.thread import ThreadAuthenticator as KeyAuthenticator


def _authenticator_class() -> type[KeyAuthenticator]:
    """pyzmq's ZAP handler thread, with User-Id = the name the key was authorised for.
    (Made on first use: zmq.auth.thread loads asyncio, ~5 MB in every process that
    imports this module, and only the broker with af_auth = curve runs one.)"""
    from zmq.auth.thread import ThreadAuthenticator

    class Authenticator(ThreadAuthenticator):
        def __init__(self, ctx: zmq.Context, registry: KeyRegistry) -> None:
            quiet = logging.getLogger("auth.zap")  # pyzmq logs keys at debug: keep it above
            quiet.setLevel(logging.INFO)
            super().__init__(ctx, log=quiet)
            self.registry = registry

        def curve_user_id(self, client_public_key: bytes) -> str:
            return self.registry.user(z85.encode(client_public_key)) or ""

    return Authenticator


def start_authenticator(ctx: zmq.Context, folder: Path) -> KeyAuthenticator:
    """The ZAP handler for the broker's context; stop() it when the broker closes."""
    registry = KeyRegistry(folder)
    auth = _authenticator_class()(ctx, registry)  # type: ignore[call-arg]
    auth.start()
    auth.configure_curve_callback(ZAP_DOMAIN, credentials_provider=registry)
    return auth
