"""Pools: the tree, inheritance, patterns for new renders, readiness and ordering priority."""

from __future__ import annotations

import pytest

from broker.validate import Invalid
from workers.scheduler.farm import Farm, Registration
from workers.scheduler.pools import Builtins, Pools
from workers.scheduler.renders import RenderFlag

NOW = 1000.0


def tree() -> Pools:
    pools = Pools(Builtins(zombie_time=16), NOW)
    pools.add("/", "farm", NOW)
    pools.add("/farm", "gpu", NOW)
    pools.add("/", "ws", NOW)
    return pools


def test_parameters_inherit_up_the_chain() -> None:
    pools = tree()
    assert pools.inherited("/farm/gpu", "zombie_time") == 16  # built-in
    pools.set_params("/farm", {"zombie_time": 30, "capacity_host": 4000})
    assert pools.inherited("/farm/gpu", "zombie_time") == 30
    assert pools.value("/farm/gpu", "capacity_host", -1) == 4000
    assert pools.value("/ws", "capacity_host", -1) == 1100  # the root's
    pools.set_params("/farm/gpu", {"zombie_time": 5})
    assert pools.render_config("/farm/gpu")["zombie_time"] == 5
    pools.set_params("/farm/gpu", {"zombie_time": -1})  # back to inherit
    assert pools.inherited("/farm/gpu", "zombie_time") == 30


def test_new_renders_go_down_by_pattern() -> None:
    pools = tree()
    pools.set_params("/farm", {"pattern": "farm.*"})
    pools.set_params("/farm/gpu", {"pattern": "farmgpu.*"})
    pools.set_params("/ws", {"pattern": "WS.*"})
    assert pools.assign("farm01").path == "/farm"
    assert pools.assign("farmgpu7").path == "/farm/gpu"
    assert pools.assign("ws12").path == "/ws"  # case-insensitive
    assert pools.assign("other").path == "/"
    with pytest.raises(Invalid, match="pattern"):
        pools.set_params("/ws", {"pattern": "("})
    with pytest.raises(Invalid, match="root"):
        pools.set_params("/", {"pattern": "x"})


def test_delete_only_empty_non_root_pools() -> None:
    pools = tree()
    with pytest.raises(Invalid, match="not empty"):
        pools.delete("/farm")
    pools.delete("/farm/gpu")
    pools.delete("/farm")
    with pytest.raises(Invalid, match="root"):
        pools.delete("/")
    assert set(pools.by_path) == {"/", "/ws"}


def test_readiness_and_priority() -> None:
    pools = tree()
    pools.set_params("/", {"priority": 100})
    pools.set_params("/farm", {"priority": 50})
    pools.set_params("/farm/gpu", {"priority": 200})
    assert pools.priority("/farm") == 75 and pools.priority("/farm/gpu") == 137.5
    assert pools.not_ready("/farm/gpu") is None
    pools.set_params("/farm", {"paused": True})
    assert pools.not_ready("/farm/gpu") == "pool /farm paused"


def test_store_round_trip() -> None:
    pools = tree()
    pools.set_params("/farm", {"pattern": "farm.*", "zombie_time": 20, "new_nimby": True})
    pools.by_path["/farm"].services.append("nuke")
    again = Pools(Builtins(), NOW)
    again.restore([p.settings() for p in pools.by_path.values()])
    assert set(again.by_path) == set(pools.by_path)
    assert again.inherited("/farm/gpu", "zombie_time") == 20
    assert again.by_path["/farm"].services == ["nuke"] and again.by_path["/farm"].new_nimby
    assert again.assign("farm9").path == "/farm"


def test_new_render_lands_by_pattern_with_new_nimby_and_pool_pause_stops_solving() -> None:
    farm = Farm(Builtins(), NOW)
    farm.pools.add("/", "farm", NOW)
    farm.pools.set_params("/farm", {"pattern": "farm.*", "new_nimby": True})
    r = farm.register_render(b"A", Registration(name="farm01"), NOW)
    assert r.pool == "/farm" and r.flags & RenderFlag.NbY
    ws = farm.register_render(b"B", Registration(name="ws01"), NOW)
    assert ws.pool == "/"


def test_pool_pattern_runs_on_re2_and_a_refused_one_changes_nothing() -> None:
    pools = tree()
    pools.set_params("/farm", {"pattern": "farm.*", "priority": 10})
    with pytest.raises(Invalid) as err:
        pools.set_params("/farm", {"pattern": "(?=farm)f.*", "priority": 50})
    assert err.value.path == "params.pattern" and "lookahead" in str(err.value)
    farm = pools.by_path["/farm"]
    assert (farm.pattern, farm.priority) == ("farm.*", 10)
    assert pools.assign("FARM01").path == "/farm"  # still the old pattern, case-insensitive
    pools.set_params("/farm", {"pattern": "(a+)+$"})
    assert pools.assign("a" * 40 + "!").path == "/"


def test_a_stored_pattern_re2_refuses_takes_no_render() -> None:
    pools = Pools(Builtins(), NOW)
    pools.restore(
        [{"path": "/", "parent": None}, {"path": "/old", "parent": "/", "pattern": "(?!ws).*"}]
    )
    assert pools.assign("farm01").path == "/"
