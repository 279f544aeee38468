"""Jobs on real renders: dispatch, output, dependencies, errors, limits, masks, bad input."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import psutil
import pytest

from broker.client import ServerError
from tests.conftest import Farm, submit, wait_for

pytestmark = pytest.mark.integration


def numeric(name: str, first: int, last: int, command: str, **block: Any) -> dict[str, Any]:
    return {
        "name": name,
        "flags": 1,
        "frame_first": first,
        "frame_last": last,
        "command": command,
        **block,
    }


def start_farm(farm: Farm, renders: int) -> list[str]:
    farm.start_server()
    names = [f"render-{i}" for i in range(renders)]
    for name in names:
        farm.start_render(name)
    wait_for(lambda: farm.online() == set(names), 30, f"{renders} renders online")
    return names


def done(farm: Farm, job_id: int) -> bool:
    return farm.job(job_id)["state"].startswith("DON") or "DON" in farm.job(job_id)["state"].split()


def intervals(tasks: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(t["time_start"], t["time_done"]) for t in tasks]


def test_numeric_job_dependencies_and_outputs(make_farm) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm(af_render_up_resources_period=1)
    start_farm(farm, 4)
    first = submit(
        farm,
        {
            "name": "frames",
            "blocks": [numeric("echo", 1, 400, "echo frame @#@-@#@", frames_per_task=2)],
        },
    )
    second = submit(
        farm,
        {
            "name": "after",
            "depend_mask": "frames",
            "blocks": [numeric("b", 1, 4, "echo after @#@")],
        },
    )
    deps = submit(
        farm,
        {
            "name": "deps",
            "blocks": [
                numeric("sim", 1, 6, "sleep 0.2; echo sim @#@"),
                numeric("render", 1, 6, "echo render @#@", tasks_depend_mask="sim"),
            ],
        },
    )
    wait_for(lambda: all(done(farm, j) for j in (first, second, deps)), 120, "all three jobs done")

    tasks = farm.tasks(first)
    assert len(tasks) == 200 and all(t["state"] == "DON" for t in tasks)
    outputs = farm.tasks(first, "output")
    for t in outputs:
        start = 1 + 2 * t["task_id"]
        assert t["output"].strip() == f"frame {start}-{start + 1}", t
    assert len({t["host"] for t in tasks}) >= 2  # the work spread over the renders

    first_done = max(t["time_done"] for t in tasks)
    assert min(t["time_start"] for t in farm.tasks(second)) >= first_done

    sim, rend = farm.tasks(deps, block_ids=[0]), farm.tasks(deps, block_ids=[1])
    for n in range(6):
        assert rend[n]["time_start"] >= sim[n]["time_done"], (n, rend[n], sim[n])
    # tout through afcmd, with the start number
    out = farm.afcmd("tout", str(first), "0", "3", "1")
    assert out.returncode == 0 and out.stdout.strip() == "frame 7-8"
    by_name = farm.afcmd("tout", str(first), "echo", "3")  # a block by its name too
    assert by_name.returncode == 0 and by_name.stdout.strip() == "frame 7-8"
    wrong = farm.afcmd("tout", str(deps), "comp", "0")
    assert (
        wrong.returncode == 1
        and "no block 'comp' (its blocks: 0 'sim', 1 'render')" in wrong.stderr
    )
    shown = farm.afcmd("jshow", str(deps)).stdout.splitlines()
    assert shown[2].split()[:2] == ["#", "BLOCK"] and shown[4].split()[:2] == ["1", "render"]


def test_errors_retry_avoid_host_end_in_error_and_restart(make_farm) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm()
    names = start_farm(farm, 3)
    job = submit(
        farm,
        {
            "name": "failing",
            "blocks": [
                numeric(
                    "b",
                    1,
                    1,
                    "echo failing on $AF_TASK_ID; exit 1",
                    errors_retries=2,
                    errors_avoid_host=1,
                    errors_task_same_host=5,
                )
            ],
        },
    )
    wait_for(
        lambda: "ERR" in farm.job(job)["state"].split() and not farm.job(job)["tasks_running"],
        60,
        "job in ERR",
    )
    (task,) = farm.tasks(job)
    assert task["starts"] == 3 and task["errors"] == 3  # errors_retries 2: three runs
    log = farm.tasks(job, "log")[0]["log"]
    hosts = [m.group(1) for line in log if (m := re.search(r"started on (\S+)", line))]
    assert len(hosts) == 3
    # errors_avoid_host 1: a host that failed once is avoided, so each run had its own render
    assert len(set(hosts)) == 3, hosts
    job_log = " ".join(farm.job(job)["log"])
    assert all(f"AVOIDING HOST {host}" in job_log for host in hosts)
    assert "exit" not in farm.tasks(job, "output")[0]["output"]  # the output is the command's
    assert "failing on 0" in farm.tasks(job, "output")[0]["output"]

    # the block still avoids the three hosts (as the original: trestart resets the task, not
    # the block's error hosts), so a fourth render takes the restarted task
    farm.start_render("render-3")
    wait_for(lambda: farm.online() == {*names, "render-3"}, 20, "a fourth render")
    restart = farm.afcmd("trestart", str(job), "0", "0")
    assert restart.returncode == 0, restart.stderr
    wait_for(lambda: farm.tasks(job)[0]["starts"] >= 4, 20, "the restarted task to run again")
    assert farm.tasks(job)[0]["host"] == "render-3"


def test_task_past_max_run_time_is_killed_with_its_tree(make_farm, tmp_path) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm(af_render_task_kill_wait=1.0)
    start_farm(farm, 1)
    pids = tmp_path / "pids"
    command = f"echo $$ >> {pids}; sh -c 'trap \"\" TERM; echo $$ >> {pids}; sleep 600' & sleep 600"
    job = submit(
        farm,
        {
            "name": "slow",
            "blocks": [numeric("b", 1, 1, command, task_max_run_time=2, errors_retries=0)],
        },
    )
    wait_for(
        lambda: pids.exists() and len(pids.read_text().split()) == 2,
        20,
        "the task and its child running",
    )
    tree = [int(p) for p in pids.read_text().split()]
    assert all(psutil.pid_exists(p) for p in tree)
    wait_for(
        lambda: farm.job(job)["state"].split()[0] == "ERR" or "ERR" in farm.job(job)["state"],
        30,
        "job ERR",
    )
    wait_for(lambda: not any(_alive(p) for p in tree), 10, "every process of the task gone")
    (task,) = farm.tasks(job, "log")
    assert any("task_max_run_time 2 s exceeded" in line for line in task["log"])


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_priorities_and_max_running_tasks(make_farm) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm()
    start_farm(farm, 2)
    farm.env["AF_USERNAME"] = "bob"
    high = submit(
        farm, {"name": "high", "priority": 150, "blocks": [numeric("b", 1, 8, "sleep 0.3")]}
    )
    single = submit(
        farm,
        {
            "name": "single",
            "priority": 150,
            "max_running_tasks": 1,
            "blocks": [numeric("b", 1, 6, "sleep 0.2")],
        },
    )
    farm.env["AF_USERNAME"] = "alice"
    low = submit(farm, {"name": "low", "priority": 99, "blocks": [numeric("b", 1, 6, "sleep 0.2")]})
    wait_for(lambda: all(done(farm, j) for j in (low, high, single)), 90, "all jobs done")

    # need = 1.1^priority / (running + 1): while 'high' has ready tasks, 'low' gets no render
    low_first = min(t["time_start"] for t in farm.tasks(low))
    assert low_first >= max(t["time_start"] for t in farm.tasks(high)), (
        "low priority ran while high waited"
    )
    # max_running_tasks 1: never two at once
    spans = sorted(intervals(farm.tasks(single)))
    for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False):
        assert s2 >= e1, f"two tasks of 'single' overlapped: {spans}"
    users = {u["name"] for u in json.loads(farm.afcmd("ulist", "--json").stdout)}
    assert {"alice", "bob"} <= users


def test_hosts_mask_and_capacity_with_why(make_farm) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm()
    start_farm(farm, 3)
    masked = submit(
        farm, {"name": "masked", "hosts_mask": "render-2", "blocks": [numeric("b", 1, 8, "true")]}
    )
    heavy = submit(farm, {"name": "heavy", "blocks": [numeric("b", 1, 2, "true", capacity=2000)]})
    wait_for(lambda: done(farm, masked), 60, "masked job done")
    assert {t["host"] for t in farm.tasks(masked)} == {"render-2"}
    assert all(t["starts"] == 0 for t in farm.tasks(heavy))
    why = farm.afcmd("jwhy", "heavy")
    assert why.returncode == 0
    assert "needs capacity 2000, render has 1100 free of 1100" in why.stdout
    assert "3 renders" in why.stdout
    # service restrictions: render-0 disables 'nuke', render-1 allows only 'maya'
    assert farm.afcmd("--admin", "rsrv", "render-0", "disable", "nuke").returncode == 0
    assert farm.afcmd("--admin", "rsrv", "render-1", "add", "maya").returncode == 0
    nuke = submit(farm, {"name": "nuke", "blocks": [numeric("b", 1, 6, "true", service="nuke")]})
    wait_for(lambda: done(farm, nuke), 60, "nuke job done")
    assert {t["host"] for t in farm.tasks(nuke)} == {"render-2"}
    probe = submit(farm, {"name": "probe", "offline": True, "blocks": [numeric("b", 1, 1, "true")]})
    why = farm.afcmd("jwhy", str(probe)).stdout
    assert "paused (OFF)" in why
    assert "block 'b': service 'generic' not enabled on the render or its pools" in why
    # the farm is not stuck: a job that fits still runs
    light = submit(farm, {"name": "light", "blocks": [numeric("b", 1, 2, "true")]})
    wait_for(lambda: done(farm, light), 30, "a fitting job done")


def test_bad_submissions_are_refused_with_the_field_and_change_nothing(farm: Farm) -> None:
    farm.start_server()
    cases = [
        ({"name": "x"}, "job.blocks: required"),
        ({"name": "x", "blocks": []}, "job.blocks: a job needs at least one block"),
        (
            {"name": "x", "blocks": [numeric("b", 1, 0, "x")]},
            "job.blocks[0].frame_last: must be ≥ frame_first",
        ),
        (
            {"name": "x", "blocks": [numeric("b", 1, 10, "x", frames_inc=-1)]},
            "job.blocks[0].frames_inc: must be ≥ 1",
        ),
        ({"name": "x", "blocks": [{"name": "b", "tasks": []}]}, "job.blocks[0].tasks"),
        (
            {"name": "x", "blocks": [numeric("b", 1, 2, "x" * 10_000_000)]},
            "job.blocks[0].command: too long",
        ),
        (
            {"name": "x", "blocks": [numeric("b", 1, 2, "x", service=["nuke"])]},
            "job.blocks[0].service: expected str",
        ),
        (
            {"name": "x", "blocks": [numeric("b", 1, 2, "x", capacity="big")]},
            "job.blocks[0].capacity: expected int",
        ),
        (
            {"name": "x", "blocks": [numeric("b", 1, 2, "x", bogus=1)]},
            "job.blocks[0].bogus: unknown field",
        ),
        ({"name": "x", "blocks": [numeric("b", 1, 10**9, "x")]}, "at most 1000000"),
    ]
    for job, expected in cases:
        with pytest.raises(ServerError) as err:
            farm.ask({"job": job})
        assert expected in err.value.text, (expected, err.value.text)
    # non-UTF-8 text inside a string field
    from broker import protocol as P

    body = P.pack_body(
        {"user_name": "u", "job": {"name": "x", "blocks": [numeric("b", 1, 2, "x")]}}
    )
    body = body.replace(b"\xa1x", b"\xa1\xff", 1)
    farm.ask({"get": {"type": "stat"}})
    client = farm._client
    client.send_frames([P.pack_header(P.MsgType.REQUEST, 999), body])
    with pytest.raises(ServerError) as err:
        client.wait_reply(999)
    assert "not valid UTF-8" in err.value.text
    # and through afcmd, a file that is not JSON
    bad = farm.tmp / "bad.json"
    bad.write_bytes(b"\xff\xfe not json")
    result = farm.afcmd("job", "submit", str(bad))
    assert result.returncode != 0 and "not valid JSON" in result.stderr
    assert [j["name"] for j in farm.ask({"get": {"type": "jobs"}})["jobs"]] == ["afanasy"]


def test_output_of_a_running_task_and_operations(make_farm) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm()
    start_farm(farm, 1)
    command = (
        "for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; echo PROGRESS: ${i}0%; sleep 0.3; done"
    )
    job = submit(farm, {"name": "talky", "blocks": [numeric("b", 1, 2, command)]})
    wait_for(
        lambda: "line 2" in farm.tasks(job, "output", block_ids=[0], task_ids=[0])[0]["output"],
        20,
        "output while running",
    )
    running = farm.tasks(job, block_ids=[0], task_ids=[0])[0]
    assert running["state"] == "RUN" and running["percent"] >= 10
    out = farm.afcmd("tout", "talky", "0", "0")
    assert "line 1" in out.stdout

    assert farm.afcmd("jpause", "talky").returncode == 0
    wait_for(lambda: farm.tasks(job)[0]["state"] == "DON", 20, "the running task to finish")
    assert farm.tasks(job)[1]["starts"] == 0 and "OFF" in farm.job(job)["state"]
    assert farm.afcmd("jstart", "talky").returncode == 0
    wait_for(lambda: farm.tasks(job)[1]["starts"] == 1, 20, "the paused job to go on")
    assert farm.afcmd("jdel", "talky").returncode == 0
    wait_for(
        lambda: [j["name"] for j in farm.ask({"get": {"type": "jobs"}})["jobs"]] == ["afanasy"],
        30,
        "the job deleted",
    )
    assert not (farm.store / "output" / str(job)).exists()
    assert os.path.isdir(farm.store)


def test_jwhy_suggests_the_fix_and_brerrors_lets_an_avoided_render_run_it(make_farm) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm()
    start_farm(farm, 1)
    marker = farm.tmp / "second-run"
    command = f"if [ -e {marker} ]; then exit 0; fi; touch {marker}; exit 1"
    job = submit(
        farm,
        {"name": "avoided", "blocks": [numeric("b", 1, 1, command, errors_avoid_host=1)]},
    )
    wait_for(lambda: farm.tasks(job)[0]["errors"] == 1, 30, "the first run to fail")
    wait_for(
        lambda: "host avoided after 1 errors" in farm.afcmd("jwhy", str(job)).stdout,
        10,
        "jwhy to see the avoided host",
    )
    why = farm.afcmd("jwhy", str(job)).stdout
    assert f"fix: renders avoided after errors (errors_avoid_host): afcmd brerrors {job}" in why
    reset = farm.afcmd("brerrors", str(job))
    assert reset.returncode == 0, reset.stderr
    wait_for(lambda: "DON" in farm.job(job)["state"], 30, "the task run again and done")
    assert farm.tasks(job)[0]["starts"] == 2

    failed = submit(
        farm, {"name": "fails", "blocks": [numeric("b", 1, 1, "exit 2", errors_retries=0)]}
    )
    wait_for(lambda: "ERR" in farm.job(failed)["state"], 30, "the job in error")
    why = farm.afcmd("jwhy", str(failed)).stdout
    assert f"fix: tasks failed: read one's output (afcmd tout {failed} BLOCK TASK)" in why
    assert f"afcmd jrestarterrors {failed}" in why
