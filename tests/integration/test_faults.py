"""Faults in a row: a render killed while its task runs, then afserver stopped or killed while
the task waits for that render (WRC). The wait goes on from when the render went silent,
whatever the restarts, and the job ends done."""

from __future__ import annotations

import signal
import time

import pytest

from tests.conftest import Farm, submit, wait_for
from tests.integration.test_chaos import kill_tree

pytestmark = pytest.mark.integration

RECONNECT_SEC = 8


def task_state(farm: Farm, job_id: int) -> str:
    return str(farm.tasks(job_id)[0]["state"])


@pytest.mark.parametrize("stop", ["sigterm", "kill9"])
def test_a_task_waiting_for_its_render_leaves_wrc_after_a_restart(make_farm, stop: str) -> None:  # type: ignore[no-untyped-def]
    farm: Farm = make_farm(af_task_reconnect_timeout=RECONNECT_SEC)
    marker = farm.tmp / "first-run"
    # the first run hangs, a second run succeeds at once
    command = f"if [ -e {marker} ]; then exit 0; fi; touch {marker}; sleep 120"
    farm.start_server()
    render = farm.start_render("r1")
    wait_for(lambda: farm.online() == {"r1"}, 20, "r1 online")
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 1, "command": command}
    job_id = submit(farm, {"name": "hangs", "blocks": [block]})
    wait_for(lambda: "RUN" in task_state(farm, job_id) and marker.exists(), 20, "the task runs")

    kill_tree(render.pid)  # the render and its task
    wait_for(lambda: "WRC" in task_state(farm, job_id), 20, "the task waits for its render")
    silent_at = time.monotonic() - 3.0  # the zombie time: the render went silent before

    assert farm.server is not None
    if stop == "sigterm":
        farm.server.send_signal(signal.SIGTERM)
        farm.server.wait(10)
    else:
        kill_tree(farm.server.pid)
    farm._client.close()
    farm._client = None
    farm.start_server()
    assert "WRC" in task_state(farm, job_id)  # still waiting: its render may yet come back

    # it is ready again within the reconnect timeout of the render going silent
    wait_for(
        lambda: "WRC" not in task_state(farm, job_id),
        RECONNECT_SEC + 10,
        "the task to stop waiting",
    )
    assert time.monotonic() - silent_at < RECONNECT_SEC + 8
    farm.start_render("r2")
    wait_for(lambda: "DON" in task_state(farm, job_id), 30, "the task done on r2")
    assert "DON" in farm.job(job_id)["state"]
