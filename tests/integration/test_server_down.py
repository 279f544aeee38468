"""Clients and renders when no server answers."""

from __future__ import annotations

import time

import pytest

from tests.conftest import Farm, wait_for

pytestmark = pytest.mark.integration


def test_afcmd_says_clearly_that_no_server_answers(farm: Farm) -> None:
    started = time.monotonic()
    result = farm.afcmd("rlist", "--json")
    assert time.monotonic() - started < 5 + 2  # the afcmd process start is not part of the 5 s
    assert result.returncode == 3
    assert "no answer from afserver at tcp://127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_afcmd_timeout_and_server_options(farm: Farm) -> None:
    result = farm.afcmd("--timeout", "0.5", "--server", "127.0.0.1:1", "stat")
    assert result.returncode == 3
    assert "127.0.0.1:1 within 0.5 s" in result.stderr
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
