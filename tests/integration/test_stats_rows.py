"""Statistics rows from real runs: one `tasks` row per finished run with the right host,
service, error flag and times, and `jobs` rows per block when the job is deleted; through
the embedded SQLite database and through the machine's PostgreSQL."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from tests.conftest import Farm, submit, wait_for

pytestmark = pytest.mark.integration

TASKS = 40
COMMAND = "test $(( @#@ % 7 )) -ne 0 || { echo frame @#@ fails; exit 1; }"


def run_and_delete(farm: Farm) -> int:
    farm.start_server()
    for name in ("r1", "r2", "r3"):
        farm.start_render(name)
    wait_for(lambda: farm.online() == {"r1", "r2", "r3"}, 20, "renders online")
    block = {
        "name": "comp",
        "service": "nuke",
        "flags": 1,
        "frame_first": 1,
        "frame_last": TASKS,
        "command": COMMAND,
        "errors_retries": 0,
    }
    job = submit(farm, {"name": "shot010", "user_name": "jimmy", "blocks": [block]})
    wait_for(
        lambda: farm.job(job)["tasks_done"] + farm.job(job)["tasks_error"] == TASKS,
        60,
        "all tasks ended",
    )
    assert farm.afcmd("jdel", str(job)).returncode == 0
    return job


def check_rows(tasks: list[tuple], jobs: list[tuple]) -> None:
    assert len(tasks) == TASKS  # one per finished run (no retries here)
    errors = {r[5] for r in tasks if r[1] == 1}
    assert errors == {7, 14, 21, 28, 35}
    for hostname, _error, service, time_started, time_done, _frame in tasks:
        assert hostname in {"r1", "r2", "r3"} and service == "nuke"
        assert 0 < time_started <= time_done
    assert len(jobs) == 1
    jobname, blockname, tasks_done, tasks_quantity, username = jobs[0]
    assert (jobname, blockname, tasks_done, tasks_quantity, username) == (
        "shot010",
        "comp",
        TASKS - 5,
        TASKS,
        "jimmy",
    )


TASK_SQL = "SELECT hostname, error, service, time_started, time_done, id_task + 1 FROM tasks ORDER BY id_task"
JOB_SQL = "SELECT jobname, blockname, tasks_done, tasks_quantity, username FROM jobs"


def test_rows_in_the_embedded_database(farm: Farm) -> None:
    run_and_delete(farm)
    path = farm.store / "stats.sqlite"

    def rows() -> tuple[list, list]:
        db = sqlite3.connect(path)
        try:
            return db.execute(TASK_SQL).fetchall(), db.execute(JOB_SQL).fetchall()
        finally:
            db.close()

    wait_for(
        lambda: path.exists() and len(rows()[1]) == 1 and len(rows()[0]) == TASKS,
        20,
        "rows written",
    )
    check_rows(*rows())


def test_rows_in_postgresql(make_farm, pg_conninfo: str) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm(af_db_conninfo=pg_conninfo)
    run_and_delete(farm)

    def rows() -> tuple[list, list]:
        with psycopg.connect(pg_conninfo) as conn:
            return conn.execute(TASK_SQL).fetchall(), conn.execute(JOB_SQL).fetchall()

    wait_for(lambda: len(rows()[1]) == 1 and len(rows()[0]) == TASKS, 20, "rows written")
    check_rows(*rows())
