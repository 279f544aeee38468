"""The solver's kept ranking of jobs starts exactly what a ranking built afresh would."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.unit.test_solver import NOW, job, make_farm
from workers.scheduler import solver as solver_module
from workers.scheduler.farm import Farm
from workers.scheduler.solver import Solver

Started = list[tuple[int, int, int, str]]


def jobs_of(rng: random.Random, n: int) -> list[tuple[dict[str, Any], str]]:
    """Jobs of three users in two branches, of mixed priority, capacity and limits."""
    out = []
    for k in range(n):
        extra: dict[str, Any] = {"priority": rng.choice([10, 50, 50, 99])}
        if rng.random() < 0.5:
            extra["branch"] = rng.choice(["/a/", "/b/"])
        if rng.random() < 0.3:
            extra["max_running_tasks"] = rng.randint(1, 3)
        if k and rng.random() < 0.15:
            extra["depend_mask"] = f"j{k - 1}$"
        block = {"capacity": rng.choice([250, 500, 1000])}
        out.append((job(f"j{k}", tasks=rng.randint(2, 12), block=block, **extra), f"u{k % 3}"))
    return out


def running(farm: Farm) -> list[tuple[str, tuple[int, int, int], int]]:
    return sorted(
        (r.name, key, attempt) for r in farm.renders.values() for key, attempt in r.tasks.items()
    )


def end(
    farm: Farm, render_name: str, key: tuple[int, int, int], attempt: int, status: str, now: float
) -> None:
    render = farm.render_by_name[render_name]
    report = {
        "job_id": key[0],
        "block_id": key[1],
        "task_id": key[2],
        "attempt": attempt,
        "status": status,
    }
    farm.task_reports(render, [report], now)


def starts(solver: Solver, now: float, batch: int, keep: bool) -> Started:
    return [
        (s["job_id"], s["block_id"], s["task_id"], r.name)
        for r, s in solver.solve(now, max_starts=batch, keep_ranking=keep)
    ]


@pytest.mark.parametrize("seed", range(12))
def test_kept_and_fresh_rankings_start_the_same_tasks(seed: int) -> None:
    """Two identical farms, the same finishes and submissions: one solver keeps its levels
    and moves the jobs whose runs started or ended, the other ranks every job each solve."""
    rng = random.Random(seed)
    names = [f"r{n}" for n in range(8)]
    farms = [make_farm(*names), make_farm(*names)]
    submissions = jobs_of(rng, 14)
    for farm in farms:
        for body, user in submissions[:10]:
            farm.add_job(body, user, "ws", NOW)
    kept, fresh = Solver(farms[0]), Solver(farms[1])
    now = NOW
    total = 0
    zombies: list[str] = []
    for step in range(60):
        now += 1.0
        batch = rng.randint(1, 6)
        a, b = starts(kept, now, batch, True), starts(fresh, now, batch, False)
        assert a == b, f"step {step}"
        total += len(a)
        assert running(farms[0]) == running(farms[1])
        runs = running(farms[0])
        if runs and not zombies:  # a busy render goes silent: its runs end as a zombie's
            zombies = [silent := runs[0][0]]  # (check_renders, which rebuilds no ranking)
            for farm in farms:
                for render in farm.renders.values():  # the others beat
                    render.time_update = now - 3600 if render.name == silent else now
                assert farm.check_zombies(now) == [farm.render_by_name[silent]]
                farm.check_render_events(now)
            runs = running(farms[0])
        for name, key, attempt in rng.sample(runs, k=rng.randint(0, len(runs))):
            status = "success" if rng.random() < 0.85 else "error"
            for farm in farms:
                end(farm, name, key, attempt, status, now)
        if step in (20, 35) and submissions[10:]:
            body, user = submissions.pop(10)
            for farm in farms:
                farm.add_job(body, user, "ws", now)
    assert total > 30  # the solvers did start things, over many solves
    assert zombies


def test_the_kept_levels_are_used_between_solves() -> None:
    """Without a change beside runs starting and ending, a solve ranks no job afresh."""
    farm = make_farm("r1", "r2", "r3", "r4")
    for k in range(5):
        farm.add_job(job(f"j{k}", tasks=20), "u", "ws", NOW)
    solver = Solver(farm)
    assert len(solver.solve(NOW, max_starts=1, keep_ranking=True)) == 1
    levels = dict(solver.levels)
    assert levels
    assert len(solver.solve(NOW + 1, max_starts=1, keep_ranking=True)) == 1
    assert all(solver.levels[key] is level for key, level in levels.items())
    farm.ranking_stale = True  # an action, say
    assert len(solver.solve(NOW + 2, max_starts=1, keep_ranking=True)) == 1
    assert all(
        solver.levels[key] is not level for key, level in levels.items() if key in solver.levels
    )


def test_done_jobs_are_left_out_of_the_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Done jobs, kept for days, have no runs and so the highest need: in the levels they
    would head every walk, and every solve would look at each of them."""
    farm = make_farm("r1", "r2")
    done = [farm.add_job(job(f"d{k}", tasks=1), "u", "ws", NOW) for k in range(30)]
    solver = Solver(farm)
    for step in range(40):
        solver.solve(NOW + step, keep_ranking=True)
        for name, key, attempt in running(farm):
            end(farm, name, key, attempt, "success", NOW + step)
    assert all(j.done for j in done)
    live = farm.add_job(job("live", tasks=5), "u", "ws", NOW + 50)
    looked: list[int] = []
    real = solver_module.job_cannot_run

    def counting(j: Any, now: float) -> str | None:
        looked.append(j.id)
        return real(j, now)

    monkeypatch.setattr(solver_module, "job_cannot_run", counting)
    started = solver.solve(NOW + 50, keep_ranking=True)
    assert {s["job_id"] for _, s in started} == {live.id}
    assert looked and not set(looked) & {j.id for j in done}
