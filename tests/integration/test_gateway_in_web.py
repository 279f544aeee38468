"""With the web on, the gateway is served by the web process, on its event loop (one
process fewer at rest): both answer, both come back after a kill -9 of that process, and
either goes on when the other's port is taken. With the web off it is a process of its own."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from gateway.client import send
from gateway.framing import Framing
from tests.conftest import Farm, free_port, wait_for, web_call


def gateway_serves(port: int) -> bool:
    try:
        return "users" in send(port, {"get": {"type": "users"}}, timeout=3)
    except OSError:
        return False


def web_serves(farm: Farm) -> bool:
    try:
        return web_call(farm, "GET", "/api/farm/jobs")[0] == 200
    except OSError:
        return False


def listens_on(proc: psutil.Process, port: int) -> bool:
    return any(
        c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
        for c in proc.net_connections("tcp")
    )


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port that another program listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


WATCHDOG_SEC = 3.0  # a process whose loop does not beat is killed this soon


def both_farm(make_farm: Callable[..., Farm], web: int, gateway: int) -> Farm:
    farm = make_farm(af_web_port=web, af_gateway_port=gateway, af_watchdog_sec=WATCHDOG_SEC)
    farm.web = f"http://127.0.0.1:{web}"  # type: ignore[attr-defined]
    farm.start_server()
    return farm


def test_the_web_process_serves_the_gateway_and_both_come_back_after_a_kill9(
    make_farm: Callable[..., Farm],
) -> None:
    port = free_port()
    farm = both_farm(make_farm, free_port(), port)
    wait_for(lambda: gateway_serves(port) and web_serves(farm), 20, "the gateway and the web")
    with pytest.raises(LookupError):
        farm.child("gateway.main")  # no process of its own
    web = farm.child("web.main")
    assert listens_on(web, port)
    assert "users" in send(port, {"get": {"type": "users"}}, Framing.HTTP)

    web.send_signal(signal.SIGKILL)
    wait_for(lambda: farm.child("web.main").pid != web.pid, 20, "the web restarted")
    wait_for(lambda: gateway_serves(port) and web_serves(farm), 20, "both back")
    assert listens_on(farm.child("web.main"), port)
    with pytest.raises(LookupError):
        farm.child("gateway.main")
    assert "Traceback" not in farm.log("afserver")

    assert farm.server is not None
    farm.server.send_signal(signal.SIGTERM)
    farm.server.wait(8)
    assert farm.server.returncode == 0
    assert "gateway stopped" in farm.log("afserver")  # stopped cleanly with the web


def test_with_the_web_off_the_gateway_is_a_process_of_its_own(
    make_farm: Callable[..., Farm],
) -> None:
    port = free_port()
    farm = make_farm(af_gateway_port=port)  # af_web_port 0
    farm.start_server()
    wait_for(lambda: gateway_serves(port), 20, "the gateway")
    assert listens_on(farm.child("gateway.main"), port)
    with pytest.raises(LookupError):
        farm.child("web.main")


def test_a_taken_gateway_port_leaves_the_web_serving(
    make_farm: Callable[..., Farm], held_port: int
) -> None:
    farm = both_farm(make_farm, free_port(), held_port)
    wait_for(lambda: web_serves(farm), 20, "the web")
    wait_for(lambda: "the web serves alone" in farm.log("afserver"), 10, "the reason logged")
    assert "gateway cannot listen" in farm.log("afserver")
    web = farm.child("web.main")
    time.sleep(2 * WATCHDOG_SEC)
    assert web_serves(farm)
    assert farm.child("web.main").pid == web.pid  # not restarted for it, nor taken as hung
    assert "Traceback" not in farm.log("afserver")


def test_a_taken_web_port_leaves_the_gateway_serving(
    make_farm: Callable[..., Any], held_port: int
) -> None:
    port = free_port()
    farm = both_farm(make_farm, held_port, port)
    wait_for(lambda: gateway_serves(port), 20, "the gateway")
    wait_for(lambda: "still serves the gateway" in farm.log("afserver"), 10, "the reason logged")
    web = farm.child("web.main")
    assert listens_on(web, port)
    time.sleep(2 * WATCHDOG_SEC)
    assert gateway_serves(port)
    assert farm.child("web.main").pid == web.pid  # not restarted for it, nor taken as hung
    assert "Traceback" not in farm.log("afserver")
