"""Render events from the periodic checks, delivered to an HTTP sink, pools in the payload."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.conftest import Farm, submit, wait_for

pytestmark = pytest.mark.integration


def hook_pool(farm: Farm, port: int, events: list[str], **params: object) -> None:
    """A pool 'farm' for renders named farm*, asking for `events` by webhook."""
    farm.ask(
        {
            "admin": True,  # pools are the admin's (we run afserver, so we are one)
            "action": {
                "type": "pools",
                "names": ["/"],
                "operation": {"type": "add_pool", "name": "farm"},
            },
        }
    )
    custom = {
        "webhooks": [f"http://127.0.0.1:{port}/r"],
        "events": {e: {"methods": ["webhook"]} for e in events},
    }
    farm.ask(
        {
            "admin": True,  # pools are the admin's (we run afserver, so we are one)
            "action": {
                "type": "pools",
                "names": ["/farm"],
                "params": {"pattern": "farm.*", "custom_data": json.dumps(custom), **params},
            },
        }
    )


def of(hooks: list[dict], event: str) -> list[dict]:
    return [h for h in hooks if h["events"] == [event]]


def test_sick_render_after_errors_from_two_users_and_heal(make_farm, http_sink) -> None:  # type: ignore[no-untyped-def]
    hooks, port = http_sink
    farm = make_farm()
    farm.start_server()
    hook_pool(farm, port, ["RENDER_SICK"], sick_errors_count=2.0)
    farm.start_render("farm01")
    wait_for(lambda: farm.online() == {"farm01"}, 20, "render online")
    for user in ("anna", "bob"):
        block = {
            "name": "b",
            "flags": 1,
            "frame_first": 1,
            "frame_last": 1,
            "command": "exit 1",
            "errors_retries": 0,
        }
        submit(farm, {"name": f"fail_{user}", "user_name": user, "blocks": [block]})
    wait_for(lambda: len(of(hooks, "RENDER_SICK")) == 1, 30, "RENDER_SICK")
    assert "SIC" in farm.renders()[0]["state"]
    assert [p["path"] for p in of(hooks, "RENDER_SICK")[0]["pools"]] == ["/farm", "/"]
    assert farm.afcmd("--admin", "rheal", "farm01").returncode == 0
    assert "SIC" not in farm.renders()[0]["state"]
    assert len(of(hooks, "RENDER_SICK")) == 1


def test_no_task_events_at_t_and_2t_and_overload(make_farm, http_sink) -> None:  # type: ignore[no-untyped-def]
    hooks, port = http_sink
    farm = make_farm(af_render_overflow_hdd=100)  # every disk is "nearly full" at 100%
    farm.start_server()
    hook_pool(
        farm,
        port,
        ["RENDER_NO_TASK", "RENDER_OVERLOAD"],
        no_task_event_time=2.0,
        overload_event_time=3.0,
    )
    farm.start_render("farm01")
    wait_for(lambda: farm.online() == {"farm01"}, 20, "render online")
    online_at = time.time()
    wait_for(lambda: len(of(hooks, "RENDER_NO_TASK")) >= 2, 20, "two RENDER_NO_TASK events")
    elapsed = time.time() - online_at
    assert elapsed >= 4 - 1.5  # the second at 2T (the check runs every second)
    wait_for(
        lambda: len(of(hooks, "RENDER_OVERLOAD")) >= 2, 20, "RENDER_OVERLOAD at once and after T"
    )
    first, second = of(hooks, "RENDER_OVERLOAD")[:2]
    assert first["render"]["name"] == "farm01" and "hdd_free_gb" in first["host_resources"]
    assert len(of(hooks, "RENDER_NO_TASK")) <= 3  # T, 2T, (4T): not every second
    log = farm.afcmd("rlog", "farm01").stdout
    assert "overload: free disk" in log
    assert second


def test_render_zombie_event_carries_its_pools(make_farm, http_sink) -> None:  # type: ignore[no-untyped-def]
    hooks, port = http_sink
    farm = make_farm()
    farm.start_server()
    hook_pool(farm, port, ["RENDER_ZOMBIE"])
    render = farm.start_render("farm01")
    farm.start_render("ws01")
    wait_for(lambda: farm.online() == {"farm01", "ws01"}, 20, "renders online")
    render.send_signal(signal.SIGKILL)
    wait_for(lambda: len(hooks) >= 1, 30, "the RENDER_ZOMBIE webhook")
    payload = hooks[0]
    assert payload["events"] == ["RENDER_ZOMBIE"] and payload["render"]["name"] == "farm01"
    assert [p["path"] for p in payload["pools"]] == ["/farm", "/"]
    assert payload["job"]["name"] == "afanasy" and "host_resources" in payload
    # ws01 is in the root pool, which asked for nothing: its death would send no event
    assert all(h["render"]["name"] == "farm01" for h in hooks)
