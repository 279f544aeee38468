"""With the web on, the statistics writer is a thread of the web process: rows still reach
the statistics database, across a kill -9 of that process, and while its port is taken."""

from __future__ import annotations

import signal
import socket
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Farm, free_port, submit, wait_for

JOB = {
    "name": "counted",
    "blocks": [{"name": "b", "flags": 1, "frame_first": 1, "frame_last": 2, "command": "true"}],
}


def task_rows(farm: Farm) -> int:
    try:
        db = sqlite3.connect(farm.store / "stats.sqlite")
        try:
            return int(db.execute("SELECT count(*) FROM tasks").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0  # not made yet


def run_and_delete(farm: Farm) -> None:
    job_id = submit(farm, JOB)
    wait_for(lambda: farm.job(job_id)["tasks_done"] == 2, 30, "the tasks done")
    assert farm.afcmd("--admin", "jdel", str(job_id)).returncode == 0


def test_the_web_writes_the_statistics_and_again_after_a_kill9(
    make_web_farm: Callable[..., Farm],
) -> None:
    farm = make_web_farm("r1")
    with pytest.raises(LookupError):
        farm.child("stats.writer")  # no process of its own
    web = farm.child("web.main")
    web.send_signal(signal.SIGKILL)
    wait_for(lambda: farm.child("web.main").pid != web.pid, 20, "the web restarted")
    run_and_delete(farm)
    wait_for(lambda: task_rows(farm) == 2, 30, "the two task rows written")


def test_a_taken_web_port_leaves_the_statistics_written(make_farm: Callable[..., Any]) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", free_port()))
    holder.listen()
    try:
        farm: Farm = make_farm(af_web_port=holder.getsockname()[1])
        farm.start_server()
        farm.start_render("r1")
        wait_for(lambda: farm.online() == {"r1"}, 20, "r1 online")
        run_and_delete(farm)
        wait_for(lambda: task_rows(farm) == 2, 30, "the two task rows written")
        assert "still writes the statistics" in farm.log("afserver")
    finally:
        holder.close()
