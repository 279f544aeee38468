"""Faults that do not kill a process, and faults in a row: a task waiting for its render (WRC)
across restarts, a scheduler that hangs."""

from __future__ import annotations

import contextlib
import signal
import time

import psutil
import pytest

from broker import protocol as P
from broker.client import Client, NoAnswer, ServerError
from tests.conftest import Farm, kill_tree, submit, wait_for

pytestmark = pytest.mark.integration

RECONNECT_SEC = 8
WATCHDOG_SEC = 5


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
    why = farm.afcmd("jwhy", str(job_id)).stdout  # and jwhy says which task and for whom
    assert "block 'b' task 0 waits for r1 to come back with its result" in why, why

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


def test_a_hung_scheduler_is_replaced_and_its_clients_are_told(make_farm) -> None:  # type: ignore[no-untyped-def]
    """SIGSTOP of the scheduler: a request it took is answered with a clear error at once
    (not at the end of the client's timeout), the watchdog replaces it within its time, the
    render stays on the farm, and no task runs twice."""
    farm: Farm = make_farm(af_watchdog_sec=WATCHDOG_SEC)
    runs = farm.tmp / "runs.txt"
    farm.start_server()
    farm.start_render("r1", "--tasks", "2")
    wait_for(lambda: farm.online() == {"r1"}, 20, "r1 online")
    block = {
        "name": "b",
        "flags": 1,
        "frame_first": 1,
        "frame_last": 12,
        "command": f"echo @#@ >> {runs}; sleep 1",
    }
    job_id = submit(farm, {"name": "marked", "blocks": [block]})
    wait_for(lambda: runs.exists() and len(runs.read_text().split()) >= 2, 20, "tasks running")

    scheduler = farm.child("workers.scheduler.main")
    client = Client(P.endpoint("127.0.0.1", farm.port), timeout=30.0)
    try:
        scheduler.send_signal(signal.SIGSTOP)
        began = time.monotonic()
        with pytest.raises(ServerError) as lost:
            client.request({"get": {"type": "jobs"}})  # handed to the stopped scheduler
        assert lost.value.code == P.ErrorCode.LOST, lost.value
        assert "may or may not have taken effect" in str(lost.value)
        assert time.monotonic() - began < 5  # the broker's liveness, not the 30 s timeout

        # asked while no scheduler serves: answered by the new one, or a clear error
        try:
            answer = client.request({"get": {"type": "jobs"}})
            assert any(j["id"] == job_id for j in answer["jobs"])
        except ServerError as exc:
            assert exc.code in (P.ErrorCode.NO_SERVICE, P.ErrorCode.LOST), exc
        wait_for(
            lambda: farm.child("workers.scheduler.main").pid != scheduler.pid,
            WATCHDOG_SEC + 10,
            "a new scheduler",
        )
        assert time.monotonic() - began < WATCHDOG_SEC + 10
        assert f"scheduler (pid {scheduler.pid}) hung" in farm.log("afserver")
    finally:
        client.close()
        with contextlib.suppress(psutil.NoSuchProcess):
            scheduler.send_signal(signal.SIGCONT)

    wait_for(lambda: "DON" in farm.job(job_id)["state"], 60, "the job done")
    frames = runs.read_text().split()
    assert sorted(frames, key=int) == [str(n) for n in range(1, 13)], frames  # each once
    assert farm.online() == {"r1"}


def test_a_submission_retried_with_its_key_after_a_timeout_makes_one_job(farm: Farm) -> None:
    """The client gives up while the scheduler is stopped; it takes the submission when it
    resumes. The retry under the same idempotency key gets the first job back."""
    farm.start_server()
    scheduler = farm.child("workers.scheduler.main")
    job = {"name": "once", "blocks": [{"name": "b", "flags": 1, "frame_first": 1, "frame_last": 2}]}
    client = Client(P.endpoint("127.0.0.1", farm.port), timeout=1.0)
    try:
        scheduler.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(NoAnswer):
                client.request({"job": job, "idempotency_key": "k-1"})
        finally:
            scheduler.send_signal(signal.SIGCONT)
        first = wait_for(
            lambda: [j for j in farm.ask({"get": {"type": "jobs"}})["jobs"] if j["name"] == "once"],
            10,
            "the resumed scheduler to take the submission",
        )
        again = client.submit(job, key="k-1")
        assert again["id"] == first[0]["id"] and again.get("repeated") is True
        other = client.submit(job)  # a new key: a new job
        assert other["id"] != first[0]["id"]
    finally:
        client.close()
    names = [j["name"] for j in farm.ask({"get": {"type": "jobs"}})["jobs"]]
    assert names.count("once") == 1 and len([n for n in names if n.startswith("once")]) == 2
