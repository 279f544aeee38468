"""The farm's render and user rules, as plain code with time passed in."""

from __future__ import annotations

import pytest

from broker.validate import Invalid
from workers.scheduler.farm import Farm, Refused, Registration
from workers.scheduler.pools import Builtins
from workers.scheduler.renders import Render, RenderFlag, state_names


def farm(zombie_time: float = 16.0) -> Farm:
    return Farm(Builtins(zombie_time=zombie_time), now=0.0)


def reg(name: str, address: str = "10.0.0.1") -> Registration:
    return Registration(
        name=name, address=address, netifs=[{"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff"}]
    )


def test_register_assigns_increasing_ids_and_marks_online() -> None:
    f = farm()
    a = f.register_render(b"A", reg("a"), now=1.0)
    b = f.register_render(b"B", reg("b"), now=1.0)
    assert (a.id, b.id) == (1, 2)
    assert a.online and state_names(a.flags) == ["ONL"]
    assert f.dirty_renders == {1, 2}


def test_online_name_from_another_connection_is_refused() -> None:
    f = farm()
    f.register_render(b"A", reg("a"), now=1.0)
    with pytest.raises(Refused, match="already online"):
        f.register_render(b"B", reg("a", "10.0.0.2"), now=2.0)
    assert len(f.renders) == 1
    assert f.counters["registrations_refused"] == 1
    # the same connection registering again is just a refresh
    assert f.register_render(b"A", reg("a"), now=3.0).id == 1


def test_offline_render_comes_back_with_its_id() -> None:
    f = farm()
    a = f.register_render(b"A", reg("a"), now=1.0)
    f.deregister_render(a, now=2.0)
    assert not a.online
    again = f.register_render(b"C", reg("a"), now=3.0)
    assert again is a and again.id == 1 and again.identity == b"C"


def test_updates_only_from_the_registered_connection() -> None:
    f = farm()
    a = f.register_render(b"A", reg("a"), now=1.0)
    assert f.render_of(b"A", a.id) is a
    assert f.render_of(b"B", a.id) is None
    assert f.render_of(b"A", 99) is None


def test_zombie_after_zombie_time_of_silence() -> None:
    f = farm(zombie_time=5.0)
    a = f.register_render(b"A", reg("a"), now=0.0)
    b = f.register_render(b"B", reg("b"), now=0.0)
    f.update_render(b, {"cpu_num": 2}, now=4.0)
    assert f.check_zombies(now=5.0) == []
    assert f.check_zombies(now=5.5) == [a]
    assert not a.online and b.online
    assert "zombie" in a.log[-1]
    assert b.host_resources == {"cpu_num": 2}


def test_falling_asleep_render_going_offline_is_sleeping() -> None:
    r = Render(id=1, name="a")
    r.go_online(b"A", 0.0)
    r.flags |= RenderFlag.WFL
    r.go_offline(1.0)
    assert r.flags & RenderFlag.WSL and not r.flags & RenderFlag.WFL
    assert state_names(r.flags) == ["OFF", "WSL"]


def test_restore_keeps_ids_and_never_reuses_them() -> None:
    f = farm()
    f.register_render(b"A", reg("a"), now=1.0)
    f.register_render(b"B", reg("b"), now=1.0)
    stored = [r.settings() for r in f.renders.values() if r.name == "b"]  # "a" was deleted
    g = farm()
    g.restore(stored, [])
    (b,) = g.renders.values()
    assert b.id == 2 and not b.online
    assert g.register_render(b"N", reg("new"), now=2.0).id == 3


def test_stored_settings_drop_live_state() -> None:
    r = Render(id=1, name="a")
    r.go_online(b"A", 0.0)
    r.flags |= RenderFlag.NBY | RenderFlag.RUN
    back = Render.from_settings(r.settings())
    assert back.flags == RenderFlag.NBY and back.identity is None


def test_select_renders_by_names_and_mask() -> None:
    f = farm()
    for name in ("farm01", "farm02", "ws01"):
        f.register_render(name.encode(), reg(name), now=0.0)
    assert [r.name for r in f.select_renders(None, "farm.*")] == ["farm01", "farm02"]
    assert [r.name for r in f.select_renders(["ws01"], "farm01")] == ["farm01", "ws01"]
    assert [r.name for r in f.select_renders(None, "farm")] == []  # full match, as the original
    with pytest.raises(Invalid, match="mask"):
        f.select_renders(None, "(")


def test_users_on_first_contact_remember_their_host() -> None:
    f = farm()
    u = f.touch_user("jimmy", "ws01", now=1.0)
    assert (u.id, u.host_name, u.time_register) == (1, "ws01", 1.0)
    f.dirty_users.clear()
    assert f.touch_user("jimmy", "ws02", now=2.0) is u
    assert u.host_name == "ws02" and u.time_activity == 2.0
    assert f.dirty_users == {"jimmy"}


def test_render_config_comes_from_the_pool_chain_with_builtins() -> None:
    f = farm(zombie_time=7.0)
    a = f.register_render(b"A", reg("a"), now=0.0)
    config = f.render_config(a)
    assert config == {
        "heartbeat_sec": 1.0,
        "resources_update_period": 5,
        "zombie_time": 7.0,
        "exit_no_task_time": 0.0,
    }
    f.pools.set_params("/", {"zombie_time": 30})
    assert f.render_config(a)["zombie_time"] == 30
