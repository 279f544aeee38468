"""nimby / NIMBY params as the original's Render::jsonRead: true sets one and clears the
other; false on either sets the render free (both cleared), as its tray tool's "set free"."""

from __future__ import annotations

from workers.scheduler import operations as ops
from workers.scheduler.farm import Farm, Registration
from workers.scheduler.pools import Builtins
from workers.scheduler.renders import RenderFlag

NOW = 1_000_000.0


def test_nimby_false_sets_the_render_free_of_both() -> None:
    farm = Farm(Builtins(), NOW)
    farm.register_render(b"A", Registration(name="ws1"), NOW)
    render = farm.render_by_name["ws1"]
    both = RenderFlag.NbY | RenderFlag.NBY
    ops.render_params(farm, render, {"NIMBY": True}, "jimmy", NOW)
    assert render.flags & both == RenderFlag.NBY
    ops.render_params(farm, render, {"nimby": True}, "jimmy", NOW)
    assert render.flags & both == RenderFlag.NbY  # one excludes the other
    ops.render_params(farm, render, {"NIMBY": True}, "jimmy", NOW)
    ops.render_params(farm, render, {"nimby": False}, "jimmy", NOW)
    assert render.flags & both == 0
    ops.render_params(farm, render, {"nimby": True, "paused": True}, "jimmy", NOW)
    ops.render_params(farm, render, {"NIMBY": False}, "jimmy", NOW)
    assert render.flags & both == 0 and render.flags & RenderFlag.PAU
