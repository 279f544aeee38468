"""The web process: statistics pages, the farm's JSON API and their description on
`af_web_port` (uvicorn).

afserver starts it beside the broker and the workers; it reads the statistics database
itself (it is a reader of reports, not of farm state) and binds to loopback unless
`af_web_bind_address` opens it.
"""

from __future__ import annotations

import logging

import uvicorn
from starlette.requests import Request

from broker import protocol as P
from broker.protocol import local_host
from config import load_config
from config.logs import setup_logging, verbosity_from_env
from stats.backends import open_backend, stats_enabled
from web.app import create_app
from web.farm_api import Farm
from web.live import LiveFeed

log = logging.getLogger("web")


def trusted_admin(_request: Request) -> str | None:
    """Trusted mode, as the original's statistics site: whoever reaches the pages may delete
    records. The pages bind to loopback by default for that reason."""
    return None


def main() -> None:
    cfg = load_config()
    setup_logging(verbosity_from_env(), "web")
    host = cfg["af_web_bind_address"] or "0.0.0.0"
    port = int(cfg["af_web_port"])
    server = local_host(cfg["af_server_bind_address"])
    endpoint = P.endpoint(server, int(cfg["af_serverport"]))
    farm = Farm(endpoint, float(cfg["af_client_timeout"]))
    live = LiveFeed(endpoint, int(cfg["af_message_size_max"]))
    backend = open_backend(cfg) if stats_enabled(cfg) else None
    app = create_app(backend, trusted_admin, farm, live)
    log.info("statistics pages on http://%s:%d/stats/", host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
