"""What a monitor push carries, on plain farm objects: no sockets, time passed in."""

from __future__ import annotations

from workers.scheduler import monitors
from workers.scheduler.farm import Farm, Registration
from workers.scheduler.pools import Builtins

NOW = 1_000_000.0


def test_resources_go_out_a_slice_a_second_each_online_render_once_a_round() -> None:
    farm = Farm(Builtins(), NOW)
    renders = [
        farm.register_render(
            f"R:{i}".encode(),
            Registration(name=f"r{i:02d}", host_resources={"cpu_idle": i}),
            NOW,
        )
        for i in range(23)
    ]
    farm.dirty_renders.clear()
    renders[3].go_offline(NOW)
    farm.dirty_renders.add(renders[4].id)  # changed: it goes out in full, not here
    watching = monitors.Monitors()
    sent: list[int] = []
    for second in range(monitors.RESOURCES_SLICES):
        push = monitors.changes(farm, watching, NOW + second, set())
        sent += [render_id for render_id, _ in push.get("resources", [])]
        assert [r["id"] for r in push.get("renders", [])] == [renders[4].id]
    assert sorted(sent) == sorted(r.id for r in renders if r not in (renders[3], renders[4]))
    assert monitors.changes(farm, watching, NOW + 4.5, set()).get("resources") is None  # <1 s
    farm.dirty_renders.clear()
    again = monitors.changes(farm, watching, NOW + 5, set())["resources"]
    by_id = dict((i, res) for i, res in again)
    first = next(r for r in renders if r.id in by_id)
    assert by_id[first.id] == first.host_resources  # the round starts over
