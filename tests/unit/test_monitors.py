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


def test_a_running_tasks_percent_goes_out_though_no_task_changed_state() -> None:
    """Percents are not stored (no dirty mark), yet a page's bar follows them: the push
    carries the task's percent and the job's summed running percent, once per change."""
    from tests.unit.test_solver import job, make_farm, solve

    farm = make_farm("r1")
    job_id = farm.add_job(job("p", tasks=4), "u", "ws", NOW).id
    started = solve(farm)
    assert started
    watching = monitors.Monitors()
    monitors.changes(farm, watching, NOW, set())
    farm.dirty_blocks.clear()
    for block in farm.jobs[job_id].blocks:
        block.dirty.clear()
    farm.dirty_jobs.clear()
    render = farm.render_by_name["r1"]
    exec_ = started[0]
    report = {
        "job_id": exec_["job_id"],
        "block_id": exec_["block_id"],
        "task_id": exec_["task_id"],
        "attempt": next(iter(render.tasks.values())),
        "status": "running",
        "percent": 40,
    }
    farm.task_reports(render, [report], NOW + 1)
    push = monitors.changes(farm, watching, NOW + 1, set())
    (group,) = push["tasks"]
    assert [t["percent"] for t in group["tasks"]] == [40]
    (summary,) = push["jobs"]
    assert summary["tasks_running_percent"] == 40  # the other running tasks are at 0
    assert monitors.changes(farm, watching, NOW + 1.1, set()).get("tasks") is None  # once
    farm.task_reports(render, [report], NOW + 2)  # the same percent again: nothing to show
    assert monitors.changes(farm, watching, NOW + 2, set()).get("tasks") is None


def test_eta_from_the_blocks_mean_task_time() -> None:
    from tests.unit.test_solver import finish, job, make_farm, solve

    farm = make_farm("r1", capacity=1000)
    job_id = farm.add_job(job("e", tasks=4, block={"capacity": 1000}), "u", "ws", NOW).id
    (first,) = solve(farm)
    finish(farm, first, now=NOW + 10)  # one task took 10 s
    solve(farm, NOW + 10)
    summary = farm.jobs[job_id].summary()
    assert summary["tasks_done"] == 1
    assert summary["eta"] == 30  # 3 left of 10 s each, one at a time
