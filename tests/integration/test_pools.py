"""Pools through afcmd with real renders: placement, inherited timing, services, restart."""

from __future__ import annotations

import json
import signal

import pytest

from tests.conftest import Farm, submit, wait_for

pytestmark = pytest.mark.integration


def pools(farm: Farm) -> dict[str, dict]:
    return {p["path"]: p for p in json.loads(farm.afcmd("plist", "--json").stdout)}


def ok(farm: Farm, *args: str) -> str:
    """Pools and renders are the admin's: ask for the role (we run afserver, so we have it)."""
    result = farm.afcmd("--admin", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_pools_place_renders_push_timing_limit_services_and_survive_a_restart(farm: Farm) -> None:
    farm.start_server()
    ok(farm, "padd", "/", "farm")
    ok(farm, "padd", "/farm", "gpu")
    ok(farm, "pset", "/farm", "pattern=farm.*", "zombie_time=5")
    ok(farm, "pset", "/farm/gpu", "pattern=farmgpu.*", "new_nimby=1")
    farm.start_render("farm01")
    farm.start_render("farmgpu1")
    farm.start_render("ws01")
    wait_for(lambda: farm.online() == {"farm01", "farmgpu1", "ws01"}, 30, "renders online")
    placed = {r["name"]: (r["pool"], r["state"]) for r in farm.renders()}
    assert placed["farm01"][0] == "/farm" and placed["ws01"][0] == "/"
    assert placed["farmgpu1"] == ("/farm/gpu", ["ONL", "NbY"])
    listing = pools(farm)
    assert (
        listing["/farm"]["renders_online"] == 1
        and listing["/farm/gpu"]["render_config"]["zombie_time"] == 5
    )

    # changed timing reaches the renders below at once
    ok(farm, "pset", "/farm", "heartbeat_sec=0.25")
    wait_for(
        lambda: "server sets heartbeat_sec to 0.25" in farm.log("render-farm01"), 10, "farm01 told"
    )
    wait_for(
        lambda: "server sets heartbeat_sec to 0.25" in farm.log("render-farmgpu1"),
        10,
        "farmgpu1 told",
    )
    assert "heartbeat_sec" not in farm.log("render-ws01").split("server sets")[-1]

    # once a pool lists services, only those run below it
    ok(farm, "psrvadd", "/farm", "nuke")
    job = submit(
        farm,
        {
            "name": "generic",
            "blocks": [
                {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 4, "command": "true"}
            ],
        },
    )
    wait_for(lambda: farm.job(job)["tasks_done"] == 4, 30, "the generic job done")
    assert {t["host"] for t in farm.tasks(job)} == {"ws01"}
    why = ok(farm, "jwhy", str(job))
    assert why  # jwhy answers for a done job too

    # a render moved by hand, and an empty pool deleted; a non-empty one refused
    ok(farm, "rsetpool", "ws01", "/farm/gpu")
    assert {r["name"]: r["pool"] for r in farm.renders()}["ws01"] == "/farm/gpu"
    refused = farm.afcmd("--admin", "pdel", "/farm")
    assert refused.returncode != 0 and "not empty" in refused.stderr
    ok(farm, "padd", "/", "tmp")
    ok(farm, "pdel", "/tmp")

    assert farm.server is not None
    farm.server.send_signal(signal.SIGTERM)
    farm.server.wait(10)
    farm._client.close()
    farm._client = None
    farm.start_server()
    after = pools(farm)
    assert set(after) == {"/", "/farm", "/farm/gpu"}
    assert after["/farm"]["pattern"] == "farm.*" and after["/farm"]["services"] == ["nuke"]
    assert after["/farm"]["params"]["zombie_time"] == 5
    wait_for(
        lambda: (
            {r["name"]: r["pool"] for r in farm.renders() if r["online"]}.get("ws01") == "/farm/gpu"
        ),
        20,
        "ws01 back in its pool",
    )
