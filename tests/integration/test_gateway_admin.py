"""The admin role for the original's clients, as a site grants it through the gateway, and
the tray tool's actions on one's own workstation: real server, renders and TCP clients,
some connecting from another loopback address to play another host."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from gateway.client import reply_body, request_bytes
from gateway.framing import Framing
from tests.conftest import wait_for
from tests.integration.test_gateway import gateway_farm

pytestmark = pytest.mark.integration

OTHER_HOST = "127.0.0.2"  # another source address on loopback: another host to the gateway


def send_from(port: int, obj: Any, source: str = "127.0.0.1", timeout: float = 10.0) -> Any:
    """One request in the AFANASY framing from the given source address."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        sock.sendall(request_bytes(obj, Framing.AFANASY))
        data = b""
        while (whole := reply_body(data, Framing.AFANASY)) is None:
            assert time.monotonic() < deadline, data
            chunk = sock.recv(65536)
            assert chunk, f"closed before a whole reply: {data!r}"
            data += chunk
    import json

    return json.loads(whole[1])


def render_action(name: str, user: str, host: str, **what: Any) -> dict[str, Any]:
    """As the original's af.py Cmd sends a render action: by mask, with who asks."""
    return {
        "action": {"type": "renders", "mask": name, "user_name": user, "host_name": host, **what}
    }


def render_of(port: int, name: str) -> dict[str, Any]:
    reply = send_from(port, {"get": {"type": "renders", "mask": name, "user_name": "x"}})
    return reply["renders"][0]


def test_listed_admins_from_listed_hosts_and_users_on_their_own_workstation(
    make_farm: Any,
) -> None:
    farm, port = gateway_farm(
        make_farm, renders=2, af_admins=["boss"], af_gateway_admin_hosts=["127.0.0.1"]
    )
    # the admin from a listed host pauses a render (a wrangler's action)
    pause = render_action("gw-render-1", "boss", "wrangler-ws", params={"paused": True})
    reply = send_from(port, pause)
    assert reply["info"]["kind"] != "error", reply
    wait_for(lambda: "PAU" in render_of(port, "gw-render-1")["state"], 10, "render paused")
    # the same user from another host: refused, and the refusal is in the server's log
    unpause = render_action("gw-render-1", "boss", "laptop", params={"paused": False})
    reply = send_from(port, unpause, source=OTHER_HOST)
    assert reply["info"]["kind"] == "error" and "admin" in reply["info"]["text"], reply
    assert "PAU" in render_of(port, "gw-render-1")["state"]
    wait_for(
        lambda: (
            "refused renders action from 127.0.0.2: user 'boss' on host 'laptop', renders "
            "params paused (mask 'gw-render-1'): user 'boss' may not" in farm.log("afserver")
        ),
        10,
        "the refusal logged",
    )
    # a request's own "admin": true from another host changes nothing
    reply = send_from(
        port,
        render_action("gw-render-1", "boss", "laptop", params={"paused": False}, admin=True),
        source=OTHER_HOST,
    )
    assert reply["info"]["kind"] == "error", reply
    # the render's own user on its host (the tray tool): unpause, free, eject, from anywhere
    owner = render_of(port, "gw-render-1")["user_name"]
    assert owner
    for what in (
        {"params": {"paused": False}},
        {"params": {"nimby": False, "NIMBY": False}},
        {"operation": {"type": "eject_tasks"}},
    ):
        reply = send_from(
            port, render_action("gw-render-1", owner, "gw-render-1", **what), source=OTHER_HOST
        )
        assert reply["info"]["kind"] != "error", (what, reply)
    wait_for(lambda: "PAU" not in render_of(port, "gw-render-1")["state"], 10, "render unpaused")
    # ... but not pause it, nor touch another render
    reply = send_from(
        port, render_action("gw-render-1", owner, "gw-render-1", params={"paused": True})
    )
    assert reply["info"]["kind"] == "error", reply
    reply = send_from(
        port, render_action("gw-render-0", owner, "gw-render-1", params={"paused": False})
    )
    assert reply["info"]["kind"] == "error" and "gw-render-0" in reply["info"]["text"], reply
    assert "Traceback" not in farm.log("afserver")
