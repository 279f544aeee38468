"""A randomized fault test, seeded and bounded. While jobs whose tasks write marker lines run,
and deleted jobs leave post commands, a fault comes every few seconds: kill -9 of a random
child of afserver, of a render (with its tasks), of the whole afserver tree, or SIGSTOP of the
scheduler, sometimes longer than the watchdog allows. At the end every job is done, no run of
a task overlapped another of the same task, a task ran to its end more than once only where a
render was killed with it in flight, and every post command ran once (a repeat only as a
marked retry: its run number over 1).

AF_SOAK_SEC (default 90) is how long the faults go on, AF_SOAK_SEED the seed: a longer run
is `AF_SOAK_SEC=1800 pytest tests/integration/test_soak.py -s`."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections import defaultdict
from pathlib import Path

import psutil
import pytest

from broker import protocol as P
from broker.client import Client, ClientError
from tests.conftest import Farm, kill_tree, wait_for

pytestmark = pytest.mark.integration

SOAK_SEC = float(os.environ.get("AF_SOAK_SEC", "90"))
SEED = int(os.environ.get("AF_SOAK_SEED", "21"))
RENDERS = ["s1", "s2", "s3"]
TASKS_PER_RENDER = 3
TASKS_PER_JOB = 12
JOBS_AT_ONCE = 3


def runs_of(path: Path) -> dict[int, dict[int, list[int]]]:
    """frame -> attempt -> [start ns, end ns] (end missing when the run was cut)."""
    runs: dict[int, dict[int, list[int]]] = defaultdict(dict)
    if not path.exists():
        return runs
    for line in path.read_text().splitlines():
        kind, frame, attempt, ns = line.split()
        runs[int(frame)].setdefault(int(attempt), []).append(int(ns))
    return runs


def posted(path: Path) -> set[str]:
    return {line.split()[0] for line in path.read_text().splitlines() if line.strip()}


class Soak:
    def __init__(self, farm: Farm, rng: random.Random) -> None:
        self.farm = farm
        self.rng = rng
        self.renders = {
            name: farm.start_render(name, "--tasks", str(TASKS_PER_RENDER)) for name in RENDERS
        }
        self.client = Client(P.endpoint("127.0.0.1", farm.port), timeout=5.0)
        self.jobs: dict[str, int] = {}  # name -> id, submitted
        self.deleted: set[str] = set()
        self.faults: dict[str, int] = defaultdict(int)
        self.posts = farm.tmp / "posts.txt"
        self.submitting = True

    def job_body(self, name: str) -> dict:
        runs = self.farm.tmp / f"runs-{name}.txt"
        command = (
            f'echo "S @#@ $AF_TASK_ATTEMPT $(date +%s%N)" >> {runs}; sleep 0.4; '
            f'echo "E @#@ $AF_TASK_ATTEMPT $(date +%s%N)" >> {runs}'
        )
        block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": TASKS_PER_JOB,
                 "command": command}  # fmt: skip
        post = f'echo "{name} ${{AF_EFFECT_RUN:-1}}" >> {self.posts}'
        return {"name": name, "command_post": post, "blocks": [block]}

    def feed(self) -> None:
        """Keep JOBS_AT_ONCE jobs on the farm; delete the done ones (their post commands)."""
        try:
            listed = {j["name"]: j for j in self.client.request({"get": {"type": "jobs"}})["jobs"]}
        except ClientError:
            return  # the server is away: next time
        self.deleted.update(n for n in self.jobs if n not in listed)  # a delete that was LOST
        for name, job in listed.items():
            if name in self.jobs and name not in self.deleted and "DON" in job["state"]:
                try:
                    self.client.request(
                        {
                            "action": {
                                "type": "jobs",
                                "ids": [job["id"]],
                                "operation": {"type": "delete"},
                            }
                        }
                    )
                    self.deleted.add(name)
                except ClientError:
                    pass
        live = [n for n in self.jobs if n not in self.deleted]
        if self.submitting and len(live) < JOBS_AT_ONCE:
            name = f"soak{len(self.jobs):03d}"
            with contextlib.suppress(ClientError):  # its name is its key: never two jobs
                self.jobs[name] = self.client.submit(self.job_body(name), key=name)["id"]

    def fault(self) -> None:
        farm = self.farm
        kind = self.rng.choice(["child", "render", "tree", "stop"])
        self.faults[kind] += 1
        assert farm.server is not None
        if kind == "child":
            children = psutil.Process(farm.server.pid).children()
            if children:
                self.rng.choice(children).send_signal(signal.SIGKILL)
        elif kind == "render":
            name = self.rng.choice(RENDERS)
            kill_tree(self.renders[name].pid)
            self.renders[name] = farm.start_render(name, "--tasks", str(TASKS_PER_RENDER))
        elif kind == "tree":
            kill_tree(farm.server.pid)
            farm.server.wait(10)
            if farm._client is not None:
                farm._client.close()
                farm._client = None
            farm.start_server()
        else:
            try:
                scheduler = farm.child("workers.scheduler.main")
            except LookupError:
                return  # between restarts
            scheduler.send_signal(signal.SIGSTOP)
            until = time.monotonic() + self.rng.uniform(1.0, 7.0)  # the watchdog: 4 s
            while time.monotonic() < until and scheduler.is_running():
                self.feed()  # clients keep asking meanwhile
            if scheduler.is_running():
                scheduler.send_signal(signal.SIGCONT)


@pytest.mark.timeout(SOAK_SEC + 400)  # the faults, then every job's end and post command
def test_random_faults_lose_nothing_and_run_nothing_twice(make_farm) -> None:  # type: ignore[no-untyped-def]
    farm: Farm = make_farm(af_task_reconnect_timeout=4, af_watchdog_sec=4)
    farm.start_server()
    soak = Soak(farm, random.Random(SEED))
    try:
        wait_for(lambda: farm.online() == set(RENDERS), 30, "renders online")
        end = time.monotonic() + SOAK_SEC
        next_fault = time.monotonic() + soak.rng.uniform(3, 8)
        while time.monotonic() < end:
            soak.feed()
            if time.monotonic() >= next_fault:
                soak.fault()
                next_fault = time.monotonic() + soak.rng.uniform(4, 10)
            time.sleep(0.2)  # pacing the feeder, not waiting for a condition

        # the faults stop: every job submitted ends done and is deleted
        wait_for(lambda: farm.online() == set(RENDERS), 60, "renders back online")
        soak.submitting = False

        def drained() -> bool:
            soak.feed()
            return set(soak.jobs) == soak.deleted

        wait_for(drained, 180, f"every job done and deleted (faults {dict(soak.faults)})", 0.5)
        names = sorted(soak.jobs)
        wait_for(
            lambda: soak.posts.exists() and posted(soak.posts) >= set(names),
            120,
            "every post command run",
        )
    finally:
        soak.client.close()

    print(f"\nsoak {SOAK_SEC:g} s, seed {SEED}: {len(soak.jobs)} jobs, faults {dict(soak.faults)}")
    # every task: runs never overlapped; more than one complete run only from killed renders
    repeated = 0
    for name in soak.jobs:
        runs = runs_of(farm.tmp / f"runs-{name}.txt")
        assert sorted(runs) == list(range(1, TASKS_PER_JOB + 1)), (name, sorted(runs))
        for frame, attempts in runs.items():
            complete = {a: t for a, t in attempts.items() if len(t) == 2}
            assert complete, f"{name} frame {frame} never ran to its end: {attempts}"
            spans = sorted(tuple(t) for t in attempts.values() if len(t) == 2)
            for (_, end_a), (start_b, _) in zip(spans, spans[1:], strict=False):
                assert end_a < start_b, f"{name} frame {frame} ran twice at once: {attempts}"
            repeated += len(complete) - 1
    allowed = soak.faults["render"] * TASKS_PER_RENDER
    assert repeated <= allowed, f"{repeated} tasks ran to their end twice; {allowed} were in flight"
    # every post command once; a repeat only as a retry (its run number over 1)
    lines = [line.split() for line in soak.posts.read_text().splitlines()]
    by_job: dict[str, list[int]] = defaultdict(list)
    for job_name, run in lines:
        by_job[job_name].append(int(run))
    for job_name, runs in by_job.items():
        # [1], or [2] when run 1 was killed before it wrote, or [1, 2] when the kill came
        # after: never one run number twice
        assert len(set(runs)) == len(runs), (
            f"post command of {job_name} ran {runs}: a repeat not marked as a retry"
        )
        assert len(runs) == 1 or soak.faults["tree"] + soak.faults["child"] > 0
