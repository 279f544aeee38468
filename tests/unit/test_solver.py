"""The solver and task lifecycle on plain farm objects: no sockets, time passed in."""

from __future__ import annotations

from typing import Any

import pytest

from broker.validate import Invalid
from workers.scheduler import solver as solver_module
from workers.scheduler.farm import Farm, Registration
from workers.scheduler.pools import Builtins
from workers.scheduler.renders import RenderFlag
from workers.scheduler.solver import Solver
from workers.scheduler.states import State, short
from workers.scheduler.why import explain

NOW = 1_000_000.0


def make_farm(*names: str, capacity: int | None = None) -> Farm:
    """Renders as the root pool makes them (1100 capacity, 4 tasks), or with `capacity`."""
    farm = Farm(Builtins(), NOW)
    for name in names:
        r = farm.register_render(name.encode(), Registration(name=name, os="unix linux 64"), NOW)
        r.host_resources = {"mem_free_mb": 8000, "hdd_free_gb": 100, "cpu_num": 8, "cpu_mhz": 3000}
        if capacity is not None:
            r.capacity_host = capacity
    return farm


def job(name: str = "j", tasks: int = 4, **extra: Any) -> dict[str, Any]:
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": tasks, "command": "echo @#@"}
    block.update(extra.pop("block", {}))
    return {"name": name, "blocks": [block], **extra}


def solve(farm: Farm, now: float = NOW) -> list[dict[str, Any]]:
    return [exec_ for _, exec_ in Solver(farm).solve(now)]


def finish(farm: Farm, exec_: dict[str, Any], status: str = "success", now: float = NOW) -> None:
    render = next(
        r
        for r in farm.renders.values()
        if (exec_["job_id"], exec_["block_id"], exec_["task_id"]) in r.tasks
    )
    report = {k: exec_[k] for k in ("job_id", "block_id", "task_id", "attempt")} | {
        "status": status
    }
    result = farm.task_reports(render, [report], now)
    assert result.close == [
        [exec_["job_id"], exec_["block_id"], exec_["task_id"], exec_["attempt"]]
    ]


def test_one_render_runs_one_default_task_at_a_time() -> None:
    farm = make_farm("r1")
    j = farm.add_job(job(tasks=3), "jimmy", "ws", NOW)
    started = solve(farm)
    assert [(s["task_id"], s["command"]) for s in started] == [
        (0, "echo 1")
    ]  # 1100 capacity, 1000 per task
    assert solve(farm) == []
    finish(farm, started[0])
    assert [s["task_id"] for s in solve(farm)] == [1]
    assert j.blocks[0].count(State.DON) == 1


def test_job_done_and_dependent_job_starts_after() -> None:
    farm = make_farm("r1", capacity=100_000)
    first = farm.add_job(job("first", tasks=2), "u", "h", NOW)
    second = farm.add_job(job("second", tasks=1, depend_mask="first"), "u", "h", NOW)
    assert second.state & State.WDP
    execs = solve(farm)
    assert {e["job_id"] for e in execs} == {first.id}
    for e in execs:
        finish(farm, e)
    assert first.state & State.DON and first.time_done == NOW
    assert second.state & State.RDY
    assert [e["job_id"] for e in solve(farm)] == [second.id]


def test_errors_retry_then_error_and_host_avoided() -> None:
    farm = make_farm("r1", "r2")
    j = farm.add_job(
        job(
            tasks=1, block={"errors_retries": 1, "errors_avoid_host": 1, "errors_task_same_host": 5}
        ),
        "u",
        "h",
        NOW,
    )
    e1 = solve(farm)[0]
    finish(farm, e1, "error")
    block = j.blocks[0]
    assert block.states[0] & State.RER and block.states[0] & State.RDY  # first retry
    e2 = solve(farm)[0]
    assert e2["attempt"] == 2
    hosts = {
        farm.renders[rid].name for rid in block.running_per_render if block.running_per_render[rid]
    }
    assert len(hosts) == 1 and block.host_names[0] not in hosts  # the failed host is avoided
    finish(farm, e2, "error")
    assert block.states[0] & State.ERR and j.state & State.ERR
    assert solve(farm) == []
    why = explain(farm, j, NOW)
    assert "no ready tasks" in why["job"]


def test_stale_attempt_is_refused_and_changes_nothing() -> None:
    farm = make_farm("r1")
    j = farm.add_job(job(tasks=1), "u", "h", NOW)
    e = solve(farm)[0]
    render = farm.render_by_name["r1"]
    stale = {
        "job_id": j.id,
        "block_id": 0,
        "task_id": 0,
        "attempt": e["attempt"] + 5,
        "status": "success",
    }
    result = farm.task_reports(render, [stale], NOW)
    assert result.close == [[j.id, 0, 0, e["attempt"] + 5]] and not result.finished
    assert j.blocks[0].states[0] & State.RUN
    other = farm.register_render(b"X", Registration(name="r2"), NOW)
    result = farm.task_reports(
        other, [{**stale, "attempt": e["attempt"], "status": "running"}], NOW
    )
    assert result.stop and j.blocks[0].states[0] & State.RUN


def test_capacity_hosts_mask_and_why() -> None:
    farm = make_farm("farm01", "ws01")
    big = farm.add_job(job("big", block={"capacity": 2000}), "u", "h", NOW)
    masked = farm.add_job(job("masked", hosts_mask="ws"), "u", "h", NOW)
    execs = solve(farm)
    assert {(e["job_id"], farm.render_by_name["ws01"].id) for e in execs} >= {
        (masked.id, farm.render_by_name["ws01"].id)
    }
    assert all(e["job_id"] != big.id for e in execs)
    why = explain(farm, big, NOW)
    assert any("needs capacity 2000" in reason for reason in why["renders"])
    why = explain(farm, masked, NOW)
    assert any("hosts_mask 'ws' does not match" in reason for reason in why["renders"])


def test_max_running_tasks_and_priority_shares() -> None:
    farm = make_farm("r1", "r2", "r3", "r4", capacity=100_000)
    limited = farm.add_job(job("limited", tasks=50, max_running_tasks=1), "a", "h", NOW)
    free = farm.add_job(job("free", tasks=50), "b", "h", NOW)
    execs = solve(farm)
    per_job = {jid: sum(1 for e in execs if e["job_id"] == jid) for jid in (limited.id, free.id)}
    assert per_job[limited.id] == 1 and per_job[free.id] >= 4


def test_need_based_shares_between_equal_jobs() -> None:
    farm = make_farm("r1", "r2")
    a = farm.add_job(job("a", tasks=10), "ua", "h", NOW)
    b = farm.add_job(job("b", tasks=10), "ub", "h", NOW)
    execs = solve(farm)
    assert sorted(e["job_id"] for e in execs) == sorted([a.id, b.id])


def test_paused_job_and_nimby_render() -> None:
    farm = make_farm("r1")
    j = farm.add_job(job(offline=True), "u", "h", NOW)
    assert j.state & State.OFF and solve(farm) == []
    assert explain(farm, j, NOW)["job"] == "paused (OFF)"
    j.paused = False
    farm.refresh_job(j, NOW)
    farm.render_by_name["r1"].flags |= RenderFlag.NBY
    assert solve(farm) == []
    assert "render is NIMBY" in explain(farm, j, NOW)["renders"]


def test_tasks_depend_mask_orders_tasks_by_frames() -> None:
    farm = make_farm("r1", "r2", "r3", "r4", capacity=100_000)
    body = {
        "name": "deps",
        "blocks": [
            {"name": "sim", "flags": 1, "frame_first": 1, "frame_last": 4, "command": "sim @#@"},
            {
                "name": "render",
                "flags": 1,
                "frame_first": 1,
                "frame_last": 4,
                "command": "r @#@",
                "tasks_depend_mask": "sim",
            },
        ],
    }
    j = farm.add_job(body, "u", "h", NOW)
    execs = solve(farm)
    assert all(e["block_id"] == 0 for e in execs)
    finish(farm, next(e for e in execs if e["task_id"] == 2))
    more = solve(farm)
    assert [(e["block_id"], e["task_id"]) for e in more] == [(1, 2)]
    assert j.blocks[1].states[2] & State.RUN


def test_time_wait_holds_the_job() -> None:
    farm = make_farm("r1")
    j = farm.add_job(job(time_wait=NOW + 60), "u", "h", NOW)
    assert j.state & State.WTM and solve(farm) == []
    farm.refresh(NOW + 61)
    assert solve(farm, NOW + 61)


def test_max_run_time_stops_with_error() -> None:
    farm = make_farm("r1")
    j = farm.add_job(
        job(tasks=1, block={"task_max_run_time": 5, "errors_retries": 0}), "u", "h", NOW
    )
    e = solve(farm)[0]
    farm.refresh(NOW + 6)
    assert farm.stops and farm.stops[0][1] == [j.id, 0, 0, e["attempt"]]
    finish(farm, e, "killed", NOW + 7)
    assert j.blocks[0].states[0] & State.ERR and j.blocks[0].errors[0] == 1


def test_bad_submissions_name_the_field_and_change_nothing() -> None:
    farm = make_farm("r1")
    cases = [
        ({"name": "x", "blocks": []}, "job.blocks"),
        ({"blocks": [{"flags": 1}]}, "job.name"),
        (job(block={"frame_first": 10, "frame_last": 1}), "job.blocks[0].frame_last"),
        (job(block={"frames_inc": -1}), "job.blocks[0].frames_inc"),
        ({"name": "x", "blocks": [{"name": "b", "tasks": []}]}, "job.blocks[0].tasks"),
        (job(block={"command": "x" * 10_000_000}), "job.blocks[0].command"),
        (job(block={"service": 5}), "job.blocks[0].service"),
        (job(block={"depend_mask": "("}), "job.blocks[0].depend_mask"),
        (job(bogus=1), "job.bogus"),
    ]
    for body, path in cases:
        with pytest.raises(Invalid) as err:
            farm.add_job(body, "u", "h", NOW)
        assert str(err.value).startswith(path), (path, str(err.value))
    assert farm.jobs == {} and farm.users == {}
    assert short(State.RDY | State.RUN) == "RDY RUN"


def test_host_tickets_from_the_pool_limit_a_block() -> None:
    from workers.scheduler import operations as ops

    farm = make_farm("r1", capacity=100_000)
    ops.pool_operation(farm, "/", {"type": "tickets", "name": "gpu", "count": 1}, "admin", NOW)
    j = farm.add_job(job(tasks=4, block={"tickets": {"gpu": 1}}), "u", "h", NOW)
    assert len(solve(farm)) == 1  # one gpu ticket per host
    why = explain(farm, j, NOW)
    assert any("ticket gpu: needs 1, 0 free" in reason for reason in why["renders"])
    ops.render_operation(
        farm, farm.render_by_name["r1"], "tickets", "admin", NOW, {"name": "gpu", "count": 2}
    )
    assert len(solve(farm)) == 1  # the render's own count wins: two in all
    ops.pool_operation(farm, "/", {"type": "tickets", "name": "gpu", "count": -1}, "admin", NOW)
    assert farm.pools.by_path["/"].tickets_host == {}


def test_a_late_heartbeat_does_not_lose_a_start_it_could_not_know() -> None:
    """Under load a heartbeat written before a start reached the render may be read long
    after; the render's echo of the pushes it has seen tells such a beat from a lost start."""
    for seen, later, lost in (
        (0, 30.0, False),  # not seen yet, the push is on its way: keep it
        (1, 0.5, True),  # the push was seen and the task is not held: lost, at once
        (0, 61.0, True),  # never seen within the long grace: the push itself was lost
        (None, 30.0, True),  # a render without the echo: the time grace alone
        (None, 1.0, False),
    ):
        farm = make_farm("r1")
        farm.add_job(job(tasks=1), "jimmy", "ws", NOW)
        [started] = solve(farm)
        render = farm.renders[1]
        render.push_seq += 1  # the loop's push of this pass carries the start
        farm.check_held(render, [], NOW + later, grace=5.0, seen=seen, grace_long=60.0)
        key = (started["job_id"], started["block_id"], started["task_id"])
        assert (key not in render.tasks) is lost, (seen, later)


def test_pushes_of_a_restarted_server_are_numbered_above_what_the_render_saw() -> None:
    """A render that saw push 350 of the server before a restart registers with it; the new
    server's pushes must count from there, or its first start would look seen and lost."""
    farm = make_farm()
    render = farm.register_render(b"R", Registration(name="r1", os="unix linux 64"), NOW)
    render.host_resources = {"mem_free_mb": 8000, "hdd_free_gb": 100, "cpu_num": 8}
    render.push_seq = max(render.push_seq, 350)  # as the registration handler does
    farm.add_job(job(tasks=1), "jimmy", "ws", NOW)
    [started] = solve(farm)
    render.push_seq += 1
    farm.check_held(render, [], NOW + 1.0, grace=5.0, seen=350, grace_long=60.0)
    assert (started["job_id"], started["block_id"], started["task_id"]) in render.tasks


def test_a_zombies_tasks_wait_for_it_before_they_are_handed_out_again() -> None:
    """A zombie is often an afrender killed and started again, with finished results in
    its outbox: its tasks wait (WRC) for the reconnect timeout before they go to ready."""
    farm = make_farm("r1", "r2")
    farm.reconnect_timeout = 30.0
    j = farm.add_job(job(tasks=1), "jimmy", "ws", NOW)
    [started] = solve(farm)
    block = j.blocks[0]
    assert farm.check_zombies(NOW + 100.0) != []  # both silent: both zombies
    assert block.states[0] & State.WRC and not block.states[0] & State.RDY
    assert solve(farm, NOW + 100.0) == []  # not handed out while it waits
    farm.refresh(NOW + 131.0)
    assert block.states[0] & State.RDY  # the render did not come back in time


def test_renders_without_room_for_any_task_leave_the_ready_index() -> None:
    """A farm whose renders each run a task (100 of 1100 capacity left) must not make every
    job look at every render in every solve; a job with smaller tasks brings them back."""
    farm = make_farm("r1", "r2", "r3")
    farm.add_job(job("big", tasks=10), "u", "h", NOW)
    solver = Solver(farm)
    assert len(solver.solve(NOW)) == 3  # one 1000-capacity task each
    assert solver.solve(NOW) == []
    assert list(solver.ready.ids()) == []  # 100 free < 1000, the least any task needs
    small = farm.add_job(job("small", tasks=10, block={"capacity": 100}), "u", "h", NOW)
    started = solver.solve(NOW)
    assert sorted(s["job_id"] for _, s in started) == [small.id] * 3
    assert list(solver.ready.ids()) == []  # now each is full


def test_a_submission_makes_only_the_new_job_look_at_the_ready_renders() -> None:
    """The jobs already there found nothing to start last time, and a new job takes room,
    never gives it: only the new one needs to look (10,000 jobs held, one solve each)."""
    farm = make_farm("r1", "r2")
    old = [farm.add_job(job(f"old{n}", hosts_mask="farm2"), "u", "h", NOW) for n in range(3)]
    solver = Solver(farm)
    assert solver.solve(NOW) == []  # no render of theirs here
    farm.solve_needed, farm.solve_new = False, set()
    new = farm.add_job(job("new", tasks=5), "u", "h", NOW)
    waiting = farm.add_job(job("waiting", depend_mask="new"), "u", "h", NOW)
    assert not farm.solve_needed
    assert farm.solve_new == {new.id}  # `waiting` is not ready: nothing of it can start
    looked: list[int] = []
    solve_job = solver.solve_job

    def counted(j: Any, exhausted: set[int]) -> Any:
        looked.append(j.id)
        return solve_job(j, exhausted)

    solver.solve_job = counted  # type: ignore[method-assign]
    started = solver.solve(NOW, only=farm.solve_new)
    assert sorted(s["job_id"] for _, s in started) == [new.id] * 2  # one on each render
    assert not set(looked) & {j.id for j in old}
    assert waiting.state & State.WDP


def test_a_render_of_other_services_is_asked_once_per_solve_not_once_per_job() -> None:
    """The system job's executors take only their own services and are always ready: every
    job that finds no other render must not ask them again, solve after solve."""
    farm = make_farm("busy")
    executor = farm.register_render(b"E", Registration(name="executor", services=["events"]), NOW)
    for n in range(20):
        farm.add_job(job(f"j{n}", tasks=4), "jimmy", "ws", NOW)
    solver = Solver(farm)
    assert len(solver.solve(NOW)) == 1  # the one render that takes them is full now
    asked: list[tuple[str, str]] = []
    refused = farm.pools.service_refused

    def counting(render: Any, service: str) -> str | None:
        asked.append((render.name, service))
        return refused(render, service)

    farm.pools.service_refused = counting  # type: ignore[method-assign]
    farm.solve_needed = True
    assert solver.solve(NOW) == []
    assert [name for name, _ in asked] == ["executor"]  # once, by the first of 20 jobs
    assert not executor.tasks


def test_a_block_whose_last_ready_task_started_is_not_ready_until_one_is_again() -> None:
    farm = make_farm("r1", "r2", "r3")
    j = farm.add_job(job(tasks=2), "jimmy", "ws", NOW)
    first, _ = solve(farm)
    block = j.blocks[0]
    assert block.state & State.RUN and not block.state & State.RDY
    finish(farm, first, "error")  # retries left: the task is ready again
    assert block.state & State.RDY


def test_a_block_with_nothing_to_start_is_asked_once_not_once_per_ready_render(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A block that says it is ready but has no task to start (here: its state made stale by
    hand) must not make the job ask every ready render: 1,000 idle renders and 100 such
    jobs made each solve take 280 ms."""
    farm = make_farm(*(f"r{n}" for n in range(50)))
    j = farm.add_job(job(tasks=2), "jimmy", "ws", NOW)
    solver = Solver(farm)
    assert len(solver.solve(NOW)) == 2
    j.blocks[0].state |= State.RDY
    picks: list[int] = []
    pick = solver_module.pick_task

    def counting(*args: Any) -> int | None:
        picks.append(1)
        return pick(*args)

    monkeypatch.setattr(solver_module, "pick_task", counting)
    farm.solve_needed = True
    assert solver.solve(NOW) == []
    assert len(picks) == 1


def test_why_names_the_hosts_mask_mode_and_the_fixes_for_errors() -> None:
    farm = make_farm("farm01", "ws1")
    find = farm.add_job(job("find", hosts_mask="gpu ws2"), "u", "h", NOW)
    words = " ".join(explain(farm, find, NOW)["hints"])
    assert "hosts_mask 'gpu ws2' is a find mask (the default)" in words
    assert "names start with gpu or ws2" in words and 'hosts_mask_type "regex"' in words
    assert f"afcmd jhmask {find.id} MASK" in words
    regex = farm.add_job(
        job("regex", hosts_mask="gpu[0-9]+", hosts_mask_type="regex"), "u", "h", NOW
    )
    assert any("regular expression" in h for h in explain(farm, regex, NOW)["hints"])
    fine = farm.add_job(job("fine", tasks=1, block={"errors_retries": 0}), "u", "h", NOW)
    assert explain(farm, fine, NOW)["hints"] == []  # nothing to fix, no advice
    for e in solve(farm):
        finish(farm, e, "error")
    hints = " ".join(explain(farm, fine, NOW)["hints"])
    assert f"afcmd jrestarterrors {fine.id}" in hints and f"afcmd brerrors {fine.id}" in hints
