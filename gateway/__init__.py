"""The original's clients through a TCP port of their own (main.py).

Kept light: afserver's supervisor imports this package for curve_refusal and gateway_in_web
alone."""

from __future__ import annotations

from typing import Any

from auth.modes import CURVE


def curve_refusal(cfg: Any) -> str | None:
    """Why the gateway may not run beside af_auth = curve, or None when it may.

    The original's clients carry no key, so the gateway could only relay the user_name they
    claim, under the server's own key, which the scheduler trusts to name any user (the web
    process names one only after checking a token; the gateway has nothing to check). Anyone
    reaching its port would then act as any user, admins included, and the keys would
    protect nothing. A list of trusted hosts would only move that trust to IP addresses."""
    if int(cfg["af_gateway_port"]) <= 0 or str(cfg["af_auth"]).strip().lower() != CURVE:
        return None
    return (
        f"af_auth = curve with the gateway on (af_gateway_port {cfg['af_gateway_port']}): the "
        "original's clients carry no key, so through the gateway anyone could act as any user, "
        "admins included; set af_gateway_port to 0 (keys for everyone) or af_auth to '' "
        "(the trusted mode)"
    )


def gateway_in_web(cfg: Any) -> bool:
    """Where the gateway runs: on the web process's event loop when the web is on (both
    asyncio servers in one process, one interpreter less at rest: ~12 MB), afserver's
    `gateway` process when the web is off; nowhere when af_gateway_port is 0."""
    return int(cfg["af_gateway_port"]) > 0 and int(cfg["af_web_port"]) > 0
