"""The monitor's renders table reads a few fields of each render, not the render in full."""

from __future__ import annotations

import json

from render.resources import _ZERO
from workers.scheduler.farm import Farm, Registration
from workers.scheduler.pools import Builtins
from workers.scheduler.renders import TABLE_RESOURCES

NOW = 1_000_000.0


def test_the_table_view_is_small_and_holds_what_the_table_draws() -> None:
    farm = Farm(Builtins(), NOW)
    render = farm.register_render(
        b"R:1", Registration(name="r1", host_resources=dict(_ZERO, cpu_idle=40)), NOW
    )
    row = render.table_json()
    assert set(row) == {"id", "name", "pool", "state", "online", "capacity_used", "tasks",
                        "host_resources"}  # fmt: skip
    assert set(row["host_resources"]) == set(TABLE_RESOURCES)
    assert row["host_resources"]["cpu_idle"] == 40 and row["state"] == ["ONL"]
    full = len(json.dumps(render.to_json(full=True)))
    assert len(json.dumps(row)) * 4 < full  # 10,000 renders: a quarter of the bytes at most
