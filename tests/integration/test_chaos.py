"""Nothing lost: kill -9 the scheduler, the broker, the whole afserver and a render while a
1,000-task job runs. Every task ends done exactly once, and no task ever ran twice at once.

One run cannot be saved by anyone: a command that finished in the instant between its exit
and the render noting it, when that render is killed -9. No render recorded it, so the task
runs again; the commands' own log may then show a second completion, never an overlap."""

from __future__ import annotations

import re
import signal
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import Farm, kill_tree, submit, wait_for

pytestmark = pytest.mark.integration

TASKS = 1000
RENDERS = ["render-a", "render-b", "render-c", "render-d"]


def tasks_done(farm: Farm, job_id: int) -> int:
    return farm.ask({"get": {"type": "jobs", "ids": [job_id]}})["jobs"][0]["tasks_done"]


def runs_from_the_commands(path: Path) -> dict[int, list[tuple[str, int, int]]]:
    """frame -> [(S|E, attempt, nanoseconds)] as the task commands wrote them."""
    runs: dict[int, list[tuple[str, int, int]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        kind, frame, attempt, ns = line.split()
        runs[int(frame)].append((kind, int(attempt), int(ns)))
    return runs


def successes_from_render_logs(farm: Farm) -> dict[tuple[int, ...], list[int]]:
    """(job, block, task) -> the attempts renders logged as succeeded: when the run ended,
    or when a restarted afrender offered a result it had kept (killed before it said so)."""
    found: dict[tuple[int, ...], set[int]] = defaultdict(set)
    pattern = re.compile(r"task \[(\d+), (\d+), (\d+), (\d+)\] success(?::| \(kept from before\))")
    for name in RENDERS:
        for m in pattern.finditer(farm.log(f"render-{name}")):
            job, block, task, attempt = (int(x) for x in m.groups())
            found[(job, block, task)].add(attempt)
    return {key: sorted(attempts) for key, attempts in found.items()}


def test_chaos_nothing_lost_nothing_twice(make_farm, tmp_path) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm(af_task_reconnect_timeout=15)
    farm.start_server()
    renders = {name: farm.start_render(name) for name in RENDERS}
    wait_for(lambda: farm.online() == set(RENDERS), 30, "renders online")
    runs = tmp_path / "runs.txt"
    command = (
        f'echo "S @#@ $AF_TASK_ATTEMPT $(date +%s%N)" >> {runs}; sleep 0.05; '
        f'echo "E @#@ $AF_TASK_ATTEMPT $(date +%s%N)" >> {runs}'
    )
    block = {
        "name": "b",
        "flags": 1,
        "frame_first": 1,
        "frame_last": TASKS,
        "command": command,
        "capacity": 250,
    }
    job = submit(farm, {"name": "chaos", "blocks": [block]})

    wait_for(lambda: tasks_done(farm, job) >= 100, 60, "100 tasks done")
    scheduler = farm.child("workers.scheduler.main")
    scheduler.send_signal(signal.SIGKILL)
    wait_for(
        lambda: farm.child("workers.scheduler.main").pid != scheduler.pid, 15, "scheduler restarted"
    )

    wait_for(lambda: tasks_done(farm, job) >= 300, 60, "300 tasks done")
    broker = farm.child("broker.broker")
    broker.send_signal(signal.SIGKILL)
    wait_for(lambda: farm.child("broker.broker").pid != broker.pid, 15, "broker restarted")

    wait_for(lambda: tasks_done(farm, job) >= 500, 60, "500 tasks done")
    assert farm.server is not None
    kill_tree(farm.server.pid)
    farm.server.wait(10)
    farm._client.close()
    farm._client = None
    farm.start_server()

    wait_for(lambda: tasks_done(farm, job) >= 700, 90, "700 tasks done")
    victim = renders["render-c"]
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    farm.start_render("render-c")

    wait_for(lambda: tasks_done(farm, job) == TASKS, 120, "all tasks done")
    wait_for(lambda: farm.online() == set(RENDERS), 30, "the restarted render back online")

    tasks = farm.tasks(job)
    assert len(tasks) == TASKS and all(t["state"] == "DON" for t in tasks)

    # From the renders' own logs: one success per task, 1,000 in all. A task done with no
    # line in any render's log lost a log line, not its result (the server has it as done).
    successes = successes_from_render_logs(farm)
    silent = [n for n in range(TASKS) if (job, 0, n) not in successes]
    assert not silent, (
        f"tasks {silent} are done but no render logged their success: a log line was lost, "
        "not a result (the server recorded each as done)"
    )
    twice = {key: a for key, a in successes.items() if len(a) != 1}
    assert not twice, f"tasks that succeeded in more than one attempt: {twice}"
    assert len(successes) == TASKS

    # From the commands themselves: the recorded run of each frame had nothing of that frame
    # start while it ran; another completion is only one that no render ever recorded.
    by_frame = runs_from_the_commands(runs)
    assert sorted(by_frame) == list(range(1, TASKS + 1))
    unrecorded = 0
    for frame, events in by_frame.items():
        (attempt,) = successes[(job, 0, frame - 1)]
        start = next(e[2] for e in events if e[0] == "S" and e[1] == attempt)
        end = next(e[2] for e in events if e[0] == "E" and e[1] == attempt)
        others = [e for e in events if e[1] != attempt]
        assert all(not start < e[2] < end for e in others), (
            f"frame {frame} ran twice at once: {events}"
        )
        unrecorded += sum(1 for e in others if e[0] == "E")
        assert tasks[frame - 1]["starts"] >= attempt
    assert unrecorded <= 16, (
        f"{unrecorded} completions no render recorded: more than were in flight"
    )

    store = farm.afcmd("store_check")
    assert store.returncode == 0 and '"integrity": "ok"' in store.stdout
