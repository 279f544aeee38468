"""The real afcmd against a real afserver: what a newcomer meets first (issue 24)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Farm, free_port, help_examples, wait_for

pytestmark = pytest.mark.integration


def _submit(farm: Farm, job: dict) -> int:
    result = subprocess.run(
        [sys.executable, "-m", "afcmd", "job", "submit"],
        input=json.dumps(job),
        env=farm.env,
        capture_output=True,
        text=True,
        timeout=20,
        cwd=farm.tmp,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[1])


def test_refused_connections_fail_at_once_naming_every_server(farm: Farm) -> None:
    ports = [free_port(), free_port()]
    servers = ",".join(f"127.0.0.1:{p}" for p in ports)
    started = time.monotonic()
    result = farm.afcmd("--timeout", "30", "jlist", env={"AF_SERVERNAME": servers})
    assert time.monotonic() - started < 10  # far from the 30 s timeout, process start included
    assert result.returncode == 3
    assert "none of the 2 servers answered" in result.stderr
    for port in ports:
        assert f"tcp://127.0.0.1:{port} refused the connection" in result.stderr
    assert result.stderr.count("is afserver running") == 1  # the advice once


def test_submit_help_examples_run_and_jwhy_explains_the_find_mask(farm: Farm) -> None:
    farm.start_server()
    farm.start_render("r1")  # a render the example's hosts mask keeps off
    wait_for(lambda: "r1" in farm.online(), 30, "render r1 online")
    examples = help_examples(farm.afcmd("job", "submit", "--help").stdout)
    ids = [_submit(farm, job) for job in examples]
    assert [farm.job(i)["tasks_num"] for i in ids] == [1, 10, 1]
    why = farm.afcmd("jwhy", str(ids[2]))
    assert why.returncode == 0, why.stderr
    text = " ".join(why.stdout.split())
    assert "hosts_mask 'farm ws' is a find mask (the default)" in text
    assert "names start with farm or ws" in text and f"afcmd jhmask {ids[2]} MASK" in text
    keys = farm.afcmd("job", "keys", "--json")
    assert keys.returncode == 0
    assert {"job", "block", "task"} == set(json.loads(keys.stdout))


def test_jwhy_on_an_error_job_says_how_to_fix_it(farm: Farm) -> None:
    farm.start_server()
    farm.start_render("r1")
    wait_for(lambda: "r1" in farm.online(), 30, "render r1 online")
    job = {
        "name": "broken",
        "blocks": [{"errors_retries": 0, "tasks": [{"command": "false"}]}],
    }
    job_id = _submit(farm, job)
    wait_for(lambda: "ERR" in farm.job(job_id)["state"], 60, "the job in ERR")
    text = " ".join(farm.afcmd("jwhy", str(job_id)).stdout.split())
    assert f"fix: tasks failed: read one's output (afcmd tout {job_id} BLOCK TASK)" in text
    assert f"afcmd jrestarterrors {job_id}" in text and f"afcmd brerrors {job_id}" in text


def test_jdel_of_a_mask_only_the_system_job_matches_says_so(farm: Farm) -> None:
    farm.start_server()
    result = farm.afcmd("jdel", ".*")
    assert result.returncode == 1
    assert "no job matches '.*' but the system job 'afanasy', which is never deleted" in (
        result.stderr
    )
    assert "may not" not in result.stderr and "admin" not in result.stderr
    pause = farm.afcmd("jpause", "afa.*")
    assert "but the system job 'afanasy'" in pause.stderr and "--admin" in pause.stderr
    assert farm.ask({"get": {"type": "jobs"}})["jobs"][0]["id"] == 1  # still there


def test_config_says_whose_it_is_and_shows_the_servers_masked(make_farm) -> None:  # noqa: ANN001
    farm = make_farm(pswd_visor="visor-secret-hash")
    farm.start_server()
    elsewhere = farm.tmp / "afcmd-own-store"
    own = farm.afcmd("config", env={"AF_STORE_FOLDER": str(elsewhere)})
    assert own.returncode == 0, own.stderr
    assert own.stdout.startswith("# afcmd's own configuration on this host")
    assert str(farm.config_file) in own.stdout.splitlines()[1]  # read from: the site file
    assert f'af_store_folder = "{elsewhere}"    (environment AF_STORE_FOLDER)' in own.stdout
    assert "afcmd config --server-side" in own.stdout
    server = farm.afcmd("config", "--server-side", env={"AF_STORE_FOLDER": str(elsewhere)})
    assert server.returncode == 0, server.stderr
    assert server.stdout.startswith("# afserver's configuration")
    assert f'af_store_folder = "{farm.store}"    ({farm.config_file})' in server.stdout
    assert 'pswd_visor = "***"' in server.stdout and "visor-secret-hash" not in server.stdout
    assert f"af_serverport = {farm.port}" in server.stdout


def test_store_folder_commands_use_the_servers_folder_or_refuse(farm: Farm) -> None:
    farm.start_server()
    mine = farm.tmp / "afcmd-own-store"  # afcmd's own setting differs, as under make run
    env = {"AF_STORE_FOLDER": str(mine)}
    issued = farm.afcmd("token", "alice", env=env)
    assert issued.returncode == 0, issued.stderr
    assert f"the server's store folder {farm.store}" in issued.stderr
    assert (farm.store / "keys" / "tokens.json").is_file()
    # the statistics writer makes its database with the first rows the scheduler commits
    wait_for(lambda: (farm.store / "stats.sqlite").exists(), 30, "the statistics database")
    checked = farm.afcmd("db_check", env=env)
    assert checked.returncode == 0, checked.stderr
    assert str(farm.store / "stats.sqlite") in checked.stdout
    other = {**env, "AF_DB_CONNINFO": "host=elsewhere password=hunter2"}
    wrong = farm.afcmd("db_reset_all", "--yes", env=other)  # never another database's tables
    assert wrong.returncode == 1, wrong.stdout
    assert "the server's af_db_conninfo is '' but this host's is 'host=elsewhere" in wrong.stderr
    assert "password=***" in wrong.stderr and "hunter2" not in wrong.stderr
    farm.stop()
    refused = farm.afcmd("token", "bob", env=env)
    assert refused.returncode == 1
    assert "no server answered to say where its store folder is" in refused.stderr
    assert f"af_store_folder {mine} (environment AF_STORE_FOLDER) does not exist" in (
        refused.stderr
    )
    listed = farm.afcmd("keys", "list", env=env)
    assert listed.returncode == 1 and "no server answered" in listed.stderr
    db = farm.afcmd("db_check", env=env)
    assert db.returncode == 1 and "does not exist" in db.stderr
    assert not mine.exists()  # nothing made where the server never looks
    # no server, but this host's folder is there (afcmd on the server's host, server down)
    here = farm.afcmd("db_check")
    assert here.returncode == 0, here.stderr
    assert "no server answered; this host's af_store_folder" in here.stderr
    assert re.search(r"stats\.sqlite", here.stdout)


def test_the_readmes_afcmd_examples_work_as_written(farm: Farm) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## afcmd, the command line", 1)[1].split("\n## ", 1)[0]
    script = section.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [line.split("  #", 1)[0].strip() for line in script.splitlines() if line.strip()]
    assert len(lines) >= 8 and all(line.startswith(("afcmd", "echo")) for line in lines)
    farm.start_server()
    farm.start_render("r1")
    wait_for(lambda: "r1" in farm.online(), 30, "render r1 online")
    env = {**farm.env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for line in lines:
        if line.startswith("afcmd tout"):  # the output is there once the task ran
            wait_for(lambda: "DON" in farm.job(2)["state"], 60, "hello done")
        result = subprocess.run(
            line, shell=True, env=env, capture_output=True, text=True, timeout=30, cwd=farm.tmp
        )
        assert result.returncode == 0, (line, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, line
        if line.startswith("afcmd tout"):
            assert "hi" in result.stdout
