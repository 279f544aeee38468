"""afserver as an administrator meets it: config, refusals at start, worker restarts."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.conftest import Farm, wait_for

pytestmark = pytest.mark.integration


def run_afserver(farm: Farm) -> subprocess.CompletedProcess[str]:
    """afserver run to its end (these tests expect it to refuse to start)."""
    return subprocess.run(
        [sys.executable, "-m", "workers.supervisor"],
        env=farm.env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_corrupt_store_stops_afserver_with_a_clear_message(farm: Farm) -> None:
    farm.store.mkdir()
    path = farm.store / "farm.sqlite"
    path.write_bytes(b"garbage" * 1000)
    proc = run_afserver(farm)
    assert proc.returncode == 3
    assert "not a usable afanasy database" in proc.stderr and str(path) in proc.stderr
    assert "restarting" not in proc.stderr
    assert path.read_bytes() == b"garbage" * 1000


def test_bad_config_value_is_an_error_naming_key_and_file(farm: Farm) -> None:
    farm.config_file.write_text('{"af_serverport": "fifty"}')
    proc = run_afserver(farm)
    assert proc.returncode != 0
    assert (
        "af_serverport" in proc.stderr
        and str(farm.config_file) in proc.stderr
        and "int" in proc.stderr
    )


def test_afcmd_config_shows_values_and_their_sources(farm: Farm) -> None:
    farm.env["AF_RENDER_NICE"] = "5"
    result = farm.afcmd("config")
    assert result.returncode == 0
    lines = {line.split(" = ")[0]: line for line in result.stdout.splitlines()}
    assert (
        str(farm.port) in lines["af_serverport"] and str(farm.config_file) in lines["af_serverport"]
    )
    assert (
        "5" in lines["af_render_nice"] and "environment AF_RENDER_NICE" in lines["af_render_nice"]
    )
    assert "(default)" in lines["af_priority"]


def test_dead_worker_is_restarted_with_a_log_line_each_time(farm: Farm) -> None:
    farm.start_server()
    pids = []
    for _ in range(2):
        scheduler = farm.child("workers.scheduler.main")
        pids.append(scheduler.pid)
        scheduler.send_signal(signal.SIGKILL)
        wait_for(
            lambda: farm.child("workers.scheduler.main").pid not in pids,
            15,
            "a restarted scheduler",
        )
        farm.wait_serving()
    restarts = [
        line
        for line in farm.log("afserver").splitlines()
        if "died" in line and "restarting" in line
    ]
    assert len(restarts) == 2
    assert "killed by signal 9" in restarts[0]
