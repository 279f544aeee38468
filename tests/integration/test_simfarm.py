"""The render simulator against a real afserver: correctness only (speed is in bench/)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from bench._common import numeric_job
from bench._simrenders import Engine, sim_names
from broker.protocol import endpoint
from tests.conftest import Farm, load_slack

pytestmark = pytest.mark.integration

RENDERS = 200
JOBS = 4
TASKS = 50


def run_until(engine: Engine, condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Drive the simulated renders until condition() holds; fail at the deadline (stretched
    by the machine's load, as conftest's wait_for)."""
    timeout *= load_slack()
    engine.run(time.monotonic() + timeout, condition)
    if not condition():
        pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def test_200_simulated_renders_run_every_task_exactly_once(farm: Farm) -> None:
    farm.start_server()
    engine = Engine(
        endpoint("127.0.0.1", farm.port), sim_names(RENDERS), heartbeat_sec=0.5, task_seconds=0.05
    )
    try:
        engine.start(time.monotonic())
        run_until(engine, lambda: engine.online() == RENDERS, 30, f"{RENDERS} renders online")
        job_ids = [farm.ask(numeric_job(f"sim{j}", TASKS))["id"] for j in range(JOBS)]
        total = JOBS * TASKS
        run_until(engine, lambda: engine.samples.closes >= total, 60, f"{total} tasks closed")
        # A few more beats with nothing to do: no render may be taken for a zombie now.
        beats = sum(r.beats for r in engine.renders)
        run_until(
            engine,
            lambda: sum(r.beats for r in engine.renders) >= beats + 3 * RENDERS,
            10,
            "three more beats per render",
        )
        stat = farm.ask({"get": {"type": "stat"}})["scheduler"]
        renders = farm.ask({"get": {"type": "renders"}})["renders"]
    finally:
        engine.close(deregister=True)

    started = Counter(key[:3] for key in engine.samples.starts)
    expected = {(job_id, 0, i) for job_id in job_ids for i in range(TASKS)}
    assert set(started) == expected
    assert [key for key, n in started.items() if n != 1] == []
    assert all(not r.outbox and not r.running for r in engine.renders)
    for job_id in job_ids:
        job = farm.job(job_id)
        assert (job["tasks_done"], job["tasks_error"]) == (TASKS, 0), job
    online = {r["name"] for r in renders if r["online"] and r["name"].startswith("sim")}
    assert online == set(sim_names(RENDERS))
    assert stat.get("zombies", 0) == 0
    assert stat.get("reports_refused", 0) == 0
    assert engine.samples.errors == []
    assert engine.samples.reregistered == 0
    assert engine.samples.send_failures == 0
    assert engine.samples.reconnects == 0
