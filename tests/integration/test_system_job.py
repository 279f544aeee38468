"""The system job with real processes: post commands run by the system-job executor, the
tasksmax limit with its queue, failures retried then dropped with their output, and a
system job that cannot be deleted."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from broker.client import ServerError
from tests.conftest import Farm, submit, wait_for

pytestmark = pytest.mark.integration


def small_job(name: str, command_post: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "command_post": command_post,
        "blocks": [{"name": "b", "flags": 1, "frame_first": 1, "frame_last": 1, "command": "true"}],
        **extra,
    }


def system(farm: Farm) -> dict[str, Any]:
    return farm.ask({"get": {"type": "jobs", "ids": [1], "mode": "full"}})["jobs"][0]


def postcmd_executor(farm: Farm) -> str:
    """The name of the system-job executor (it serves postcmd), once it has registered."""
    return wait_for(
        lambda: next(
            (
                r["name"]
                for r in farm.renders(executors=True)
                if r["name"].startswith("sysjob@") and r["online"]
            ),
            None,
        ),
        20,
        "the system-job executor registered",
    )


def post_block(farm: Farm) -> dict[str, Any]:
    return system(farm)["system"][0]


def test_post_command_removes_a_file_and_its_task_goes(farm: Farm, tmp_path: Path) -> None:
    farm.start_server()
    postcmd_executor(farm)
    scene = tmp_path / "scene.tmp"
    scene.write_text("temporary scene")
    job = submit(farm, small_job("cleanup", f"rm {scene}"))
    assert farm.afcmd("jdel", str(job)).returncode == 0
    wait_for(lambda: not scene.exists(), 20, "the post command to remove the file")
    wait_for(lambda: post_block(farm)["live_tasks"] == 0, 10, "the done system task removed")
    shown = farm.afcmd("jshow", "afanasy")
    assert shown.returncode == 0 and "QUEUED" in shown.stdout and "post_commands" in shown.stdout
    with pytest.raises(ServerError, match="needs the admin role"):
        farm.ask({"action": {"type": "jobs", "ids": [1], "params": {"priority": 10}}})
    with pytest.raises(ServerError, match="system job cannot be deleted"):
        farm.ask(
            {"admin": True, "action": {"type": "jobs", "ids": [1], "operation": {"type": "delete"}}}
        )
    assert farm.afcmd("--admin", "jdel", "afanasy").returncode == 1
    assert farm.afcmd("--admin", "jpri", "afanasy", "120").returncode == 0
    assert system(farm)["priority"] == 120


def test_tasksmax_two_and_ten_post_commands_none_lost(make_farm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm(af_sysjob_tasksmax=2)
    farm.start_server()
    postcmd_executor(farm)
    marks = tmp_path / "marks"
    marks.mkdir()
    ids = [submit(farm, small_job(f"job{n}", f"sleep 0.3; touch {marks}/{n}")) for n in range(10)]
    reply = farm.ask({"action": {"type": "jobs", "ids": ids, "operation": {"type": "delete"}}})
    assert reply["count"] == 10
    seen_queue = 0
    deadline = time.monotonic() + 60
    while len(list(marks.iterdir())) < 10:
        block = post_block(farm)
        assert block["live_tasks"] <= 2, block
        seen_queue = max(seen_queue, block["queued"])
        assert time.monotonic() < deadline, (
            f"only {len(list(marks.iterdir()))} of 10 post commands ran"
        )
        time.sleep(0.05)  # sampling the live count, not waiting for a condition
    assert sorted(p.name for p in marks.iterdir()) == [str(n) for n in range(10)]
    assert seen_queue >= 1  # the rest waited in the queue
    wait_for(
        lambda: post_block(farm)["live_tasks"] == 0 and post_block(farm)["queued"] == 0,
        10,
        "all gone",
    )


def test_failing_post_command_is_retried_then_dropped_with_its_output(make_farm) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm(af_sysjob_tasklife=4)
    farm.start_server()
    farm.start_render("r1")
    farm.start_render("r2")
    wait_for(lambda: farm.online() == {"r1", "r2"}, 20, "renders online")
    job = submit(farm, small_job("broken", "echo cannot clean up here; exit 3"))
    farm.ask({"action": {"type": "jobs", "ids": [job], "operation": {"type": "delete"}}})
    wait_for(
        lambda: "dropped" in " ".join(system(farm)["log"]), 30, "the failing post command dropped"
    )
    log = "\n".join(system(farm)["log"])
    assert "post_commands task 'echo' failed" in log
    assert "cannot clean up here" in log
    # each failure avoided the host that failed (errors_task_same_host 1): several hosts tried
    tasks = farm.tasks(1, "log", block_ids=[0], task_ids=[0])[0]["log"]
    hosts = {line.split("started on ")[1].split()[0] for line in tasks if "started on " in line}
    assert len(hosts) >= 2, tasks
    assert post_block(farm)["live_tasks"] == 0


def test_queued_post_commands_survive_a_restart(make_farm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm()
    farm.start_server()
    # no render may run post commands: take them from the executor, so they wait
    executor = postcmd_executor(farm)
    assert farm.afcmd("--admin", "rpause", executor).returncode == 0
    mark = tmp_path / "done"
    job = submit(farm, small_job("later", f"touch {mark}"))
    farm.ask({"action": {"type": "jobs", "ids": [job], "operation": {"type": "delete"}}})
    wait_for(lambda: post_block(farm)["live_tasks"] == 1, 10, "the post command waiting")
    assert farm.server is not None
    farm.server.terminate()
    farm.server.wait(10)
    farm._client.close()
    farm._client = None
    farm.start_server()
    assert post_block(farm)["live_tasks"] == 1
    assert farm.afcmd("--admin", "runpause", executor).returncode == 0
    wait_for(mark.exists, 20, "the post command to run after the restart")
    check = json.loads(farm.afcmd("store_check").stdout)
    wait_for(
        lambda: json.loads(farm.afcmd("store_check").stdout)["rows"].get("jobs") == 0,
        10,
        "no job rows",
    )
    assert check["integrity"] == "ok"


def test_command_pre_runs_first_and_a_failing_one_puts_the_job_in_error(
    make_farm, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm(af_sysjob_tasklife=3)
    farm.start_server()
    farm.start_render("r1")
    wait_for(lambda: farm.online() == {"r1"}, 20, "render online")
    marker = tmp_path / "prepared"
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 3, "command": f"cat {marker}"}
    good = submit(
        farm,
        {"name": "prepared", "command_pre": f"sleep 0.5; echo ready > {marker}", "blocks": [block]},
    )
    assert "WDP" in farm.job(good)["state"]
    wait_for(lambda: "DON" in farm.job(good)["state"], 30, "the job done after its command_pre")
    assert all(t["errors"] == 0 for t in farm.tasks(good))  # no task ran before the file existed

    bad = submit(
        farm,
        {"name": "unprepared", "command_pre": "echo cannot prepare; exit 2", "blocks": [block]},
    )
    wait_for(
        lambda: "ERR" in farm.job(bad)["state"], 30, "the job in ERR after its command_pre failed"
    )
    log = "\n".join(farm.job(bad)["log"])
    assert "command_pre FAILED" in log and "cannot prepare" in log
    assert all(t["starts"] == 0 for t in farm.tasks(bad))
    assert "command_pre failed" in farm.afcmd("jwhy", str(bad)).stdout


def test_a_mask_that_matches_the_system_job_among_others_leaves_it_out(farm: Farm) -> None:
    """`jdel '.*'` deletes the user's jobs and says the system job was left out; the system
    job is acted on when named alone."""
    farm.start_server()
    ids = [submit(farm, small_job(f"shot{n}", "true")) for n in range(2)]
    result = farm.afcmd("jdel", ".*")  # a user, not an admin: the system job is not theirs
    assert result.returncode == 0, result.stderr
    assert "left out" in result.stdout and "afanasy" in result.stdout
    wait_for(
        lambda: not {j["id"] for j in farm.ask({"get": {"type": "jobs"}})["jobs"]} & set(ids),
        20,
        "the user's jobs deleted",
    )
    assert system(farm)["id"] == 1  # still there
    assert farm.afcmd("--admin", "jpri", "afanasy", "110").returncode == 0  # named alone
    assert system(farm)["priority"] == 110
