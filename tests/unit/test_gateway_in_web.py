"""Where the gateway runs: on the web process's loop when the web is on, else its own."""

from __future__ import annotations

from typing import Any

import pytest

from config.defaults import DEFAULTS
from gateway import gateway_in_web
from workers.supervisor import build_children


def cfg(**settings: Any) -> dict[str, Any]:
    return {**DEFAULTS, **settings}


@pytest.mark.parametrize(
    ("gateway_port", "web_port", "in_web"),
    [(51001, 51080, True), (51001, 0, False), (0, 51080, False), (0, 0, False)],
)
def test_the_gateway_is_in_the_web_only_when_both_are_on(
    gateway_port: int, web_port: int, in_web: bool
) -> None:
    assert gateway_in_web(cfg(af_gateway_port=gateway_port, af_web_port=web_port)) is in_web


def test_the_default_configuration_has_no_gateway_process() -> None:
    assert gateway_in_web(DEFAULTS)
    names = [c.name for c in build_children(cfg(), local_render=False)]
    assert names == ["broker", "scheduler", "executor", "web"]


def test_with_the_web_off_the_gateway_is_a_process_of_its_own() -> None:
    names = [c.name for c in build_children(cfg(af_web_port=0), local_render=False)]
    assert names == ["broker", "scheduler", "executor", "gateway", "stats"]
    names = [c.name for c in build_children(cfg(af_web_port=0, af_gateway_port=0), False)]
    assert "gateway" not in names
