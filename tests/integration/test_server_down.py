"""Clients and renders when no server answers."""

from __future__ import annotations

import socket
import time

import pytest

from tests.conftest import Farm, wait_for

pytestmark = pytest.mark.integration


def test_afcmd_says_at_once_that_nothing_listens(farm: Farm) -> None:
    started = time.monotonic()
    result = farm.afcmd("--timeout", "30", "rlist", "--json")  # not waited out
    assert time.monotonic() - started < 10  # the afcmd process start included
    assert result.returncode == 3
    assert "afserver at tcp://127.0.0.1:" in result.stderr
    assert "refused the connection: is afserver running there?" in result.stderr
    assert "Traceback" not in result.stderr


def test_afcmd_timeout_and_server_options(farm: Farm) -> None:
    result = farm.afcmd("--timeout", "0.5", "--server", "127.0.0.1:1", "stat")
    assert result.returncode == 3
    assert "127.0.0.1:1 refused the connection" in result.stderr
    # a listener that never answers (not afserver): the timeout, then a clear line
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        result = farm.afcmd("--timeout", "0.5", "--server", f"127.0.0.1:{port}", "stat")
    assert result.returncode == 3
    assert f"127.0.0.1:{port} within 0.5 s" in result.stderr
    bad = farm.afcmd("--server", "host:notaport", "stat")
    assert bad.returncode == 2 and "bad port" in bad.stderr


def test_render_keeps_trying_and_registers_once_the_server_is_up(farm: Farm) -> None:
    farm.start_render("render-a", "-v")
    wait_for(
        lambda: farm.log("render-render-a").count("unreachable; will retry") >= 2,
        15,
        "the render to try twice on its own",
    )
    farm.start_server()
    wait_for(lambda: farm.online() == {"render-a"}, 20, "the early render to register")
