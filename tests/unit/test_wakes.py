"""Sleep and wake rules on plain farm objects."""

from __future__ import annotations

import pytest

from broker.validate import Invalid
from workers.scheduler import wakes
from workers.scheduler.farm import Farm, Registration
from workers.scheduler.pools import Builtins
from workers.scheduler.renders import RenderFlag

NOW = 1000.0
NETIFS = [{"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "addresses": ["10.0.0.5"]}]


def farm_with(*names: str) -> Farm:
    farm = Farm(Builtins(), NOW)
    farm.create_system_job(("postcmd", "wakeonlan", "events"), 10, 1800, 1000, NOW)
    farm.wolwake_cmd = "wolwake"
    for name in names:
        farm.register_render(
            name.encode(), Registration(name=name, address="10.0.0.5", netifs=NETIFS), NOW
        )
    return farm


def asleep(farm: Farm, name: str) -> None:
    render = farm.render_by_name[name]
    wakes.request_sleep(farm, render, NOW, "test")
    assert render.flags & RenderFlag.WFL and render in farm.sleeps
    render.go_offline(NOW + 1)
    assert render.flags & RenderFlag.WSL and not render.flags & RenderFlag.WFL


def test_sleep_refusals() -> None:
    farm = farm_with("r1")
    farm.render_by_name["r1"].netifs = []
    with pytest.raises(Invalid, match="no network interface"):
        wakes.request_sleep(farm, farm.render_by_name["r1"], NOW, "test")
    farm.render_by_name["r1"].netifs = NETIFS
    asleep(farm, "r1")
    with pytest.raises(Invalid, match="offline"):
        wakes.request_sleep(farm, farm.render_by_name["r1"], NOW, "test")


def test_wake_queues_a_wolwake_task_with_the_macs() -> None:
    farm = farm_with("r1")
    asleep(farm, "r1")
    wakes.request_wake(farm, farm.render_by_name["r1"], NOW + 2, "test")
    assert farm.sysjob is not None
    (cmd,) = farm.sysjob.slots[1].values()
    assert cmd.command == "wolwake --wake --ip 10.0.0.5 --hostname r1 aa:bb:cc:dd:ee:ff"
    assert farm.render_by_name["r1"].flags & RenderFlag.WWK


def test_wake_retried_then_failed() -> None:
    farm = farm_with("r1")
    asleep(farm, "r1")
    render = farm.render_by_name["r1"]
    wakes.request_wake(farm, render, NOW, "test")
    wakes.check_wakes(farm, NOW + 5, timeout=10, retries=1)
    assert render.wake_attempts == 1
    wakes.check_wakes(farm, NOW + 11, timeout=10, retries=1)
    assert render.wake_attempts == 2 and render.flags & RenderFlag.WWK
    wakes.check_wakes(farm, NOW + 22, timeout=10, retries=1)
    assert not render.flags & RenderFlag.WWK and "wake FAILED" in render.log[-1]


def test_work_wakes_only_a_render_that_could_run_it() -> None:
    farm = farm_with("r1", "r2")
    asleep(farm, "r1")
    asleep(farm, "r2")
    assert wakes.wake_for_work(farm, NOW) is None  # no work
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 1, "command": "true"}
    farm.add_job({"name": "j", "hosts_mask": "r2", "blocks": [block]}, "u", "h", NOW)
    woken = wakes.wake_for_work(farm, NOW)
    assert (
        woken is farm.render_by_name["r2"] and not farm.render_by_name["r1"].flags & RenderFlag.WWK
    )
    assert wakes.wake_for_work(farm, NOW) is None  # r2 is already waking


def test_a_render_asleep_as_asked_is_no_zombie() -> None:
    farm = farm_with("r1", "r2")
    for render in farm.renders.values():
        render.custom_data = '{"events": {"RENDER_ZOMBIE": {"methods": ["email"]}}}'
    wakes.request_sleep(farm, farm.render_by_name["r1"], NOW, "test")
    offline = farm.check_zombies(NOW + 100)
    assert {r.name for r in offline} == {"r1", "r2"}
    assert farm.render_by_name["r1"].flags & RenderFlag.WSL
    assert farm.sysjob is not None
    events = [c for c in farm.sysjob.slots[2].values()]
    assert [c.job_name for c in events] == ["r2"]  # only the one that died
