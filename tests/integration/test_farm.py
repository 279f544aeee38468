"""afserver with real renders: registration, resources, zombies, a worker restart."""

from __future__ import annotations

import json
import signal
import time

import psutil
import pytest

from broker.client import Client
from broker.protocol import endpoint
from tests.conftest import Farm, wait_for

pytestmark = pytest.mark.integration

NAMES = {"render-a", "render-b", "render-c"}


def test_three_renders_online_with_resources_and_macs(farm: Farm) -> None:
    farm.start_server()
    for name in sorted(NAMES):
        farm.start_render(name)
    wait_for(lambda: farm.online() == NAMES, 20, "3 renders online")

    renders = {r["name"]: r for r in farm.renders()}
    for name in NAMES:
        r = renders[name]
        assert r["state"][0] == "ONL"
        assert r["host_resources"]["mem_total_mb"] > 0
        assert r["host_resources"]["cpu_num"] >= 1
        assert r["host"]["cpu_num"] >= 1
        assert r["os"] == "unix linux 64"
        assert r["address"] == "127.0.0.1"
        macs = [n["mac"] for n in r["netifs"]]
        assert macs and all(len(m) == 17 and m != "00:00:00:00:00:00" for m in macs)
    assert len({r["id"] for r in renders.values()}) == 3

    table = farm.afcmd("rlist")
    assert table.returncode == 0
    assert all(name in table.stdout for name in NAMES)


def test_killed_render_goes_offline_after_zombie_time(farm: Farm) -> None:
    farm.start_server()
    victim = farm.start_render("render-a")
    farm.start_render("render-b")
    wait_for(lambda: farm.online() == {"render-a", "render-b"}, 20, "2 renders online")

    victim.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: farm.online() == {"render-b"}, 15, "the killed render to turn offline")
    # zombie_time is 3 s in the test config: not before it, and soon after.
    assert time.monotonic() - killed >= 2.5
    log = farm.afcmd("rlog", "render-a")
    assert "zombie" in log.stdout


def test_scheduler_killed_is_restarted_and_renders_come_back_unduplicated(farm: Farm) -> None:
    farm.start_server()
    for name in sorted(NAMES):
        farm.start_render(name)
    wait_for(lambda: farm.online() == NAMES, 20, "3 renders online")
    ids_before = {r["name"]: r["id"] for r in farm.renders()}

    scheduler = farm.child("workers.scheduler.main")
    scheduler.send_signal(signal.SIGKILL)
    scheduler.wait(5)
    wait_for(
        lambda: farm.child("workers.scheduler.main").pid != scheduler.pid, 10, "a new scheduler"
    )
    wait_for(lambda: farm.online() == NAMES, 15, "all renders online again")

    renders = farm.renders()
    assert sorted(r["name"] for r in renders) == sorted(NAMES)  # none duplicated
    assert {r["name"]: r["id"] for r in renders} == ids_before  # ids kept by name
    assert "scheduler" in farm.log("afserver") and "restarting" in farm.log("afserver")


def test_broker_killed_is_restarted_and_everyone_reconnects(farm: Farm) -> None:
    farm.start_server()
    farm.start_render("render-a")
    wait_for(lambda: farm.online() == {"render-a"}, 20, "render online")

    broker = farm.child("broker.broker")
    broker.send_signal(signal.SIGKILL)
    broker.wait(5)
    wait_for(lambda: farm.child("broker.broker").pid != broker.pid, 10, "a new broker")
    farm.wait_serving()
    wait_for(lambda: farm.online() == {"render-a"}, 15, "the render online through the new broker")
    stat = json.loads(farm.afcmd("stat", "--json").stdout)
    assert stat["broker"]["workers"] == {"scheduler": 1}


def test_render_ids_survive_a_server_restart(farm: Farm) -> None:
    farm.start_server()
    farm.start_render("render-a")
    wait_for(lambda: farm.online() == {"render-a"}, 20, "render online")
    first_id = farm.renders()[0]["id"]
    assert farm.server is not None
    farm.server.send_signal(signal.SIGTERM)
    farm.server.wait(10)

    farm.start_server()
    wait_for(lambda: farm.online() == {"render-a"}, 20, "render back after the restart")
    assert [r["id"] for r in farm.renders()] == [first_id]


def test_second_render_with_an_online_name_is_refused(farm: Farm) -> None:
    farm.start_server()
    farm.start_render("render-a")
    wait_for(lambda: farm.online() == {"render-a"}, 20, "render online")
    farm.start_render("render-a")  # logs to the same file name: find the refusal there
    wait_for(
        lambda: "already online" in farm.log("render-render-a"),
        10,
        "the second render to be told the name is taken",
    )
    assert len(farm.renders()) == 1


def test_afserver_stops_everything_within_5_seconds(farm: Farm) -> None:
    server = farm.start_server()
    farm.start_render("render-a")
    wait_for(lambda: farm.online() == {"render-a"}, 20, "render online")
    children = psutil.Process(server.pid).children()
    assert len(children) == 4  # broker, scheduler, stats, the system-job executor

    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    server.wait(6)
    assert time.monotonic() - started < 5
    assert server.returncode == 0
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_users_are_created_on_first_contact(farm: Farm) -> None:
    farm.start_server()
    farm.env["AF_USERNAME"] = "jimmy"
    assert farm.afcmd("rlist").returncode == 0
    with Client(endpoint("127.0.0.1", farm.port)) as client:
        users = client.request({"get": {"type": "users"}})["users"]
    jimmy = [u for u in users if u["name"] == "jimmy"]
    assert len(jimmy) == 1 and jimmy[0]["host_name"]
