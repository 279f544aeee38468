"""The scheduler loop's tick: when it solves. A real Scheduler on a store in a temporary
folder; its broker connection is never made (replies wait in the outbox)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from config import load_config
from workers.scheduler.farm import Registration
from workers.scheduler.main import (
    CHECK_RENDERS_SEC,
    CHECK_SLICES,
    FINALS_BATCH,
    RENDERS_PER_SLICE,
    SOLVE_BATCH,
    SOLVE_GAP_SEC,
    Scheduler,
    check_slices,
    solve_gap,
)

T0 = 100.0  # the loop's monotonic clock, passed in


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[Scheduler]:
    cfg = load_config({"af_store_folder": str(tmp_path)}, environ={}, home=str(tmp_path))
    ctx = zmq.Context()  # its own: the periodic checks bind an inproc address
    s = Scheduler(cfg, ctx)
    try:
        yield s
    finally:
        s.store.close()
        ctx.destroy(linger=0)


def setup_farm(s: Scheduler, renders: int, tasks: int) -> None:
    now = s.farm.branches.root.time_creation
    for n in range(renders):
        s.farm.register_render(f"R:{n}".encode(), Registration(name=f"r{n:03d}"), now)
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": tasks, "command": "true"}
    s.farm.add_job({"name": "j", "blocks": [block]}, "jimmy", "ws", now)


def running(s: Scheduler) -> int:
    return sum(len(r.tasks) for r in s.farm.renders.values())


def test_a_full_batch_goes_on_at_once_then_solves_wait_their_gap(scheduler: Scheduler) -> None:
    s = scheduler
    setup_farm(s, renders=SOLVE_BATCH + 5, tasks=1000)
    assert s.tick(T0) == T0  # a full batch: the next pass goes on
    assert running(s) == SOLVE_BATCH
    assert s.tick(T0 + 0.001) == float("inf")  # the rest; nothing more to do
    assert running(s) == SOLVE_BATCH + 5

    # a task ends: its render is free, but no solve begins within the gap
    render = next(r for r in s.farm.renders.values() if r.tasks)
    (job_id, block, task), attempt = next(iter(render.tasks.items()))
    report = {"job_id": job_id, "block_id": block, "task_id": task, "attempt": attempt}
    s.farm.task_reports(render, [report | {"status": "success"}], 0.0)
    assert s.farm.solve_needed
    gap_ends = s.next_solve  # after the last solve: its gap (solve_gap of what it took)
    assert T0 + 0.001 < gap_ends <= T0 + 0.001 + SOLVE_GAP_SEC
    assert s.tick((T0 + 0.001 + gap_ends) / 2) == pytest.approx(gap_ends)
    assert running(s) == SOLVE_BATCH + 4
    s.tick(gap_ends)
    assert running(s) == SOLVE_BATCH + 5


def test_finals_put_aside_are_handled_a_batch_a_pass(scheduler: Scheduler) -> None:
    s = scheduler
    setup_farm(s, renders=FINALS_BATCH + 1, tasks=FINALS_BATCH + 1)
    s.tick(T0)
    s.tick(T0 + 0.001)
    assert running(s) == FINALS_BATCH + 1
    for render in s.farm.renders.values():
        for (job_id, block, task), attempt in render.tasks.items():
            final = {"job_id": job_id, "block_id": block, "task_id": task, "attempt": attempt}
            s.handler.finals.append((render, final | {"status": "success"}, 0.0))
    assert s.tick(T0 + 1) == T0 + 1  # one left: the next pass goes on at once
    assert running(s) == 1 and len(s.handler.finals) == 1
    s.tick(T0 + 1.001)
    assert running(s) == 0 and not s.handler.finals


def test_a_round_of_render_checks_has_as_many_slices_as_the_farm_needs() -> None:
    assert [check_slices(n) for n in (0, 1, RENDERS_PER_SLICE)] == [1, 1, 1]
    assert check_slices(RENDERS_PER_SLICE + 1) == 2
    assert check_slices(CHECK_SLICES * RENDERS_PER_SLICE * 5) == CHECK_SLICES


def check_interval(s: Scheduler) -> float:
    (job,) = [j for j in s.periodic.scheduler.get_jobs() if "check_renders" in j.args[0]]
    return job.trigger.interval.total_seconds()


@pytest.fixture
def running_checks(scheduler: Scheduler) -> Iterator[Scheduler]:
    """The scheduler with its periodic checks started, as in its loop (posts are not read)."""
    scheduler.periodic.start()
    try:
        yield scheduler
    finally:
        scheduler.periodic.shutdown()


def test_a_small_farm_is_checked_in_one_go_a_second(running_checks: Scheduler) -> None:
    scheduler = running_checks
    setup_farm(scheduler, renders=10, tasks=1)
    assert check_interval(scheduler) == CHECK_RENDERS_SEC  # an idle loop wakes at 1 Hz
    scheduler.check_renders(T0)
    assert scheduler.check_done == 10  # the whole round in one check
    assert check_interval(scheduler) == CHECK_RENDERS_SEC


def test_a_large_farm_is_checked_a_slice_at_a_time_at_the_rounds_pace(
    running_checks: Scheduler,
) -> None:
    scheduler = running_checks
    renders = 2 * RENDERS_PER_SLICE + 500  # 3 slices
    setup_farm(scheduler, renders=renders, tasks=1)
    scheduler.check_renders(T0)
    assert scheduler.check_done == -(-renders // 3)
    assert check_interval(scheduler) == pytest.approx(CHECK_RENDERS_SEC / 3)
    scheduler.check_renders(T0 + 0.3)
    scheduler.check_renders(T0 + 0.6)
    assert scheduler.check_done >= renders  # every render once a round
    for rid in list(scheduler.farm.renders)[: RENDERS_PER_SLICE + 1000]:
        scheduler.farm.renders.pop(rid)
    scheduler.check_renders(T0 + 1.0)  # a new round on a smaller farm: back to one check
    assert scheduler.check_done == renders - RENDERS_PER_SLICE - 1000
    assert check_interval(scheduler) == CHECK_RENDERS_SEC


def test_the_solve_gap_grows_with_what_a_solve_costs() -> None:
    assert solve_gap(0.0001) == pytest.approx(0.001)  # a small farm: next to no wait
    assert solve_gap(0.002) == pytest.approx(0.02)
    assert solve_gap(0.5) == SOLVE_GAP_SEC  # never more than the gap
    assert solve_gap(0.0001, new_jobs_only=True) == SOLVE_GAP_SEC  # submissions share one
