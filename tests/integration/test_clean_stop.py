"""A clean stop costs no reconnect wait: a render that stopped on SIGTERM (its task killed)
and registers again, or a whole `make run` tree stopped and started again, has its task
running again at once, not after af_task_reconnect_timeout (WRC), and no error counted."""

from __future__ import annotations

import signal
import time

import pytest

from tests.conftest import Farm, submit, wait_for

pytestmark = pytest.mark.integration

RECONNECT = 300  # af_task_reconnect_timeout: the wait a restart must not cost


def long_job(farm: Farm) -> int:
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 1, "command": "sleep 600"}
    return submit(farm, {"name": "long", "blocks": [block]})


def task(farm: Farm, job: int) -> dict:
    return farm.tasks(job)[0]


def running_on(farm: Farm, job: int, render: str, attempt: int) -> dict | None:
    """The task when it runs on `render` as attempt `attempt` or later."""
    t = task(farm, job)
    ok = "RUN" in t["state"] and t["host"] == render and t["starts"] >= attempt
    return t if ok else None


def assert_no_error(farm: Farm, job: int) -> None:
    t = task(farm, job)
    assert t["errors"] == 0, t
    assert "ERR" not in t["state"] and "WRC" not in t["state"], t
    assert farm.job(job)["blocks"][0].get("error_hosts", {}) == {}


def test_a_render_stopped_cleanly_and_started_again_runs_its_task_again_at_once(
    make_farm,
) -> None:
    farm = make_farm(af_task_reconnect_timeout=RECONNECT)
    farm.start_server()
    render = farm.start_render("r1")
    job = long_job(farm)
    wait_for(lambda: running_on(farm, job, "r1", 1), 60, "the task running on r1")

    render.send_signal(signal.SIGTERM)
    render.wait(30)
    stopped = time.monotonic()
    farm.start_render("r1")
    wait_for(lambda: running_on(farm, job, "r1", 2), 120, "the task running on r1 again")
    took = time.monotonic() - stopped
    print(f"\ntask running again {took:.1f} s after a clean render stop")
    assert took < RECONNECT / 2  # the wait it would cost: 300 s
    assert_no_error(farm, job)


def test_a_make_run_tree_stopped_cleanly_and_started_again_runs_its_task_again_at_once(
    make_farm,
) -> None:
    """afserver --local-render (make run) stopped with SIGTERM: the local render and the
    scheduler stop together, so the task comes back from the store waiting for its render
    (WRC); the render registers again without it and the wait ends there."""
    farm = make_farm(af_task_reconnect_timeout=RECONNECT, af_render_name="local")
    farm.start_server("--local-render")
    job = long_job(farm)
    wait_for(lambda: running_on(farm, job, "local", 1), 60, "the task running on the local render")

    assert farm.server is not None
    farm.server.send_signal(signal.SIGTERM)
    farm.server.wait(30)
    farm._client.close()
    farm._client = None
    stopped = time.monotonic()
    farm.start_server("--local-render")
    wait_for(lambda: running_on(farm, job, "local", 2), 120, "the task running again")
    took = time.monotonic() - stopped
    print(f"\ntask running again {took:.1f} s after afserver --local-render stopped")
    assert took < RECONNECT / 2  # the wait it would cost: 300 s
    assert_no_error(farm, job)
