"""The web process: statistics pages, the farm's JSON API and their description on
`af_web_port` (uvicorn).

afserver starts it beside the broker and the workers; it reads the statistics database
itself (it is a reader of reports, not of farm state) and binds to loopback unless
`af_web_bind_address` opens it. With the gateway on, this process serves it too, on the same
event loop (gateway.gateway_in_web), and with statistics on it writes them in a thread
(stats.writer_in_web).
"""

from __future__ import annotations

import getpass
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable

from starlette.requests import Request

from auth import curve
from auth.tokens import TokenVerifier
from broker import protocol as P
from broker.protocol import local_host
from config import load_config
from config.logs import setup_logging, verbosity_from_env
from gateway import gateway_in_web
from stats import stats_enabled, writer_in_web
from stats.backends import open_backend
from stats.writer import make_writer
from web import serve
from web.app import create_app
from web.farm_api import ADMIN_HEADER, ApiError, Farm, Identify, token_identity, trusted_identity
from web.live import LiveFeed
from web.origins import loopback_hosts, trusted_origins
from workers import watchdog
from workers.scheduler import permissions as perms

log = logging.getLogger("web")
ADMIN_PAGE = "/stats/admin"


def trusted_admin(_request: Request) -> str | None:
    """Trusted mode, as the original's statistics site: whoever reaches the pages may delete
    records. The pages bind to loopback by default for that reason."""
    return None


def token_admin(identify: Identify, admins: frozenset[str]) -> Callable[[Request], str | None]:
    """With af_auth: deleting records needs a token of an admin who asks for the role (the
    admin page's form asks by being sent: a browser's form cannot add a header)."""

    def refusal(request: Request) -> str | None:
        try:
            who = identify(request)
        except ApiError as exc:
            return exc.text
        asks = who["admin"] or request.url.path == ADMIN_PAGE
        if not asks or who["user_name"] not in admins:
            return (
                f"deleting records needs the admin role ({ADMIN_HEADER}: 1, granted to af_admins)"
            )
        return None

    return refusal


def main() -> None:
    cfg = load_config()
    setup_logging(verbosity_from_env(), "web")
    host = cfg["af_web_bind_address"] or "0.0.0.0"
    port = int(cfg["af_web_port"])
    server = local_host(cfg["af_server_bind_address"])
    endpoint = P.endpoint(server, int(cfg["af_serverport"]))
    keys = curve.client_keys(cfg)  # with af_auth: the server's own key (afserver's child)
    farm = Farm(endpoint, float(cfg["af_client_timeout"]), keys)
    live = LiveFeed(endpoint, int(cfg["af_message_size_max"]), keys)
    backend = open_backend(cfg) if stats_enabled(cfg) else None
    writer = make_writer(cfg, thread=True) if writer_in_web(cfg) else None
    reader: Identify | None = None
    if keys is None:
        identify, admin = trusted_identity, trusted_admin
    else:
        verify = TokenVerifier(curve.keys_folder(cfg))
        identify, reader = token_identity(verify), token_identity(verify, cookie=True)
        admin = token_admin(reader, perms.admins(cfg["af_admins"], getpass.getuser()))
    try:
        trusted = trusted_origins(cfg["af_web_trusted_origins"])
    except ValueError as exc:
        sys.exit(f"web: {exc}")
    app = create_app(
        backend,
        admin,
        farm,
        live,
        identify,
        stats_identity=reader,
        body_max=int(cfg["af_message_size_max"]),
        trusted_origins=trusted,
        hosts=loopback_hosts(host, trusted),
        healthy=writer.healthy if writer is not None else None,
    )
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    log.info(
        "monitor on http://%s:%d/monitor/jobs, statistics pages on http://%s:%d/stats/",
        shown,
        port,
        shown,
        port,
    )
    thread = None
    if writer is not None:  # the statistics writer: a thread here (stats.writer_in_web)
        thread = threading.Thread(target=writer.run, name="stats-writer", daemon=True)
        thread.start()
    beside = None
    if gateway_in_web(cfg):  # its modules only then
        from gateway.main import InWeb

        beside = InWeb(cfg)
    try:
        serve.run(app, host, port, beside, writer.healthy if writer is not None else None)
    except SystemExit:  # uvicorn could not serve (the port taken), no gateway: the writer goes on
        if writer is None or thread is None:
            raise
        log.error("web: not serving on port %d; this process still writes the statistics", port)
        writer.alive = watchdog.beat_from_env()  # its loop proves the process lives now
        signal.signal(signal.SIGTERM, writer.stop)
        signal.signal(signal.SIGINT, writer.stop)
        thread.join()
    finally:
        if writer is not None and thread is not None:
            writer.stop()
            thread.join(2.0)


if __name__ == "__main__":
    main()
