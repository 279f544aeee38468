"""Statistics rows from real runs: one `tasks` row per finished run with the right host,
service, error flag and times, and `jobs` rows per block when the job is deleted; through
the embedded SQLite database and through the machine's PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time

import psycopg
import pytest

from tests.conftest import Farm, submit, wait_for

pytestmark = pytest.mark.integration

TASKS = 200
FAILING = {f for f in range(1, TASKS + 1) if f % 7 == 0}  # frames whose command fails
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
        "errors_avoid_host": 0,  # 28 errors over 3 renders must not make the block avoid them all
    }
    job = submit(farm, {"name": "shot010", "user_name": "jimmy", "blocks": [block]})
    wait_for(
        lambda: farm.job(job)["tasks_done"] + farm.job(job)["tasks_error"] == TASKS,
        90,
        "all tasks ended",
    )
    assert farm.afcmd("--admin", "jdel", str(job)).returncode == 0
    assert farm.afcmd("jpause", "1").returncode != 0  # the system job needs the admin role
    return job


def check_rows(tasks: list[tuple], jobs: list[tuple]) -> None:
    assert len(tasks) == TASKS  # one per finished run (no retries here)
    errors = {r[5] for r in tasks if r[1] == 1}
    assert errors == FAILING
    for hostname, _error, service, time_started, time_done, _frame in tasks:
        assert hostname in {"r1", "r2", "r3"} and service == "nuke"
        assert 0 < time_started <= time_done
    assert len(jobs) == 1
    jobname, blockname, tasks_done, tasks_quantity, username = jobs[0]
    assert (jobname, blockname, tasks_done, tasks_quantity, username) == (
        "shot010",
        "comp",
        TASKS - len(FAILING),
        TASKS,
        "jimmy",
    )


TASK_SQL = "SELECT hostname, error, service, time_started, time_done, id_task + 1 FROM tasks ORDER BY id_task"
JOB_SQL = "SELECT jobname, blockname, tasks_done, tasks_quantity, username FROM jobs"
LOG_SQL = "SELECT subject, type, object, info FROM logs ORDER BY time"


def refused_logged(logs: list[tuple]) -> bool:
    """The last action of the run: pausing the system job without the admin role."""
    return any(o == "ids: 1" and "refused" in i and "admin" in i for _, t, o, i in logs)


def check_logs(logs: list[tuple]) -> None:
    """Registrations, the submission, the deletion and the server start are logged."""
    assert ("afserver", "server", "started") in {(s.split("@")[0], t, i) for s, t, _, i in logs}
    online = {o for _, t, o, i in logs if t == "renders" and i.startswith("online")}
    assert online >= {"r1", "r2", "r3"}
    jobs = [(s.split("@")[0], o, i) for s, t, o, i in logs if t == "jobs"]
    assert any(o == "shot010" and i.startswith("submitted") for _, o, i in jobs), jobs
    assert any(i.startswith("delete") for _, _, i in jobs), jobs


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

    def logs() -> list[tuple]:
        db = sqlite3.connect(path)
        try:
            return db.execute(LOG_SQL).fetchall()
        finally:
            db.close()

    wait_for(lambda: refused_logged(logs()), 20, "the refused action's row written")
    check_logs(logs())


def test_rows_in_postgresql(make_farm, pg_conninfo: str) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm(af_db_conninfo=pg_conninfo)
    run_and_delete(farm)

    def rows() -> tuple[list, list]:
        with psycopg.connect(pg_conninfo) as conn:
            return conn.execute(TASK_SQL).fetchall(), conn.execute(JOB_SQL).fetchall()

    wait_for(lambda: len(rows()[1]) == 1 and len(rows()[0]) == TASKS, 20, "rows written")
    check_rows(*rows())

    def logs() -> list[tuple]:
        with psycopg.connect(pg_conninfo) as conn:
            return conn.execute(LOG_SQL).fetchall()

    wait_for(lambda: refused_logged(logs()), 20, "the refused action's row written")
    check_logs(logs())


def pg_cluster(action: str) -> subprocess.CompletedProcess[str]:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    return subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.serial
def test_no_row_lost_while_postgresql_is_down_30_s(make_farm, pg_conninfo: str) -> None:  # type: ignore[no-untyped-def]
    if (
        not shutil.which("pg_ctlcluster")
        or not os.path.isdir("/etc/postgresql")
        or os.geteuid() != 0
    ):
        if os.environ.get("AF_TEST_REQUIRE_PG"):
            pytest.fail(
                "this test stops and starts the machine's PostgreSQL: it needs root and pg_ctlcluster"
            )
        pytest.skip("stopping PostgreSQL needs root and pg_ctlcluster")
    farm = make_farm(af_db_conninfo=pg_conninfo)
    farm.start_server()
    farm.start_render("r1")
    wait_for(lambda: farm.online() == {"r1"}, 20, "render online")
    outbox = farm.store / "farm.sqlite"

    def waiting() -> int:
        db = sqlite3.connect(outbox)
        try:
            sql = "SELECT count(*) FROM stats_outbox WHERE tbl != 'logs'"
            return db.execute(sql).fetchone()[0]
        finally:
            db.close()

    stopped = pg_cluster("stop")
    assert stopped.returncode == 0, stopped.stderr
    down_since = time.monotonic()
    try:
        block = {
            "name": "b",
            "flags": 1,
            "frame_first": 1,
            "frame_last": 10,
            "command": "sleep 0.05",
        }
        job = submit(farm, {"name": "outage", "blocks": [block]})
        wait_for(
            lambda: farm.job(job)["tasks_done"] == 10, 30, "the job done while PostgreSQL is down"
        )
        farm.afcmd("--admin", "jdel", str(job))
        wait_for(lambda: waiting() == 11, 20, "ten task rows and one job row waiting in the store")
        while time.monotonic() - down_since < 30:  # the rows stay, none lost, for the whole outage
            assert waiting() == 11
            time.sleep(0.5)  # sampling during the outage, not waiting for a condition
    finally:
        started = pg_cluster("start")
        assert started.returncode == 0, started.stderr
    wait_for(lambda: waiting() == 0, 30, "the waiting rows written once PostgreSQL is back")
    with psycopg.connect(pg_conninfo) as conn:
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 10
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 1
    assert "statistics database unreachable" in farm.log("afserver")
