"""Two afservers on one PostgreSQL store: one active, the other a standby that refuses with
the active's name, then takes over when the active's whole tree is killed, and a frozen
active (SIGSTOP past its lease) finds on SIGCONT that it lost the store and commits nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import psycopg
import pytest

from tests.conftest import Farm, submit, wait_for
from tests.integration.test_restart import numeric

pytestmark = pytest.mark.integration
PG_RESTART_ENV = "AF_TEST_PG_RESTART"  # .ci/run sets it: the machine's PostgreSQL is CI's own


def two_servers(make_farm: Callable[..., Farm], conninfo: str) -> tuple[Farm, Farm]:
    active = make_farm(af_store_db=conninfo, af_db_conninfo="off")
    active.start_server()
    standby = make_farm(af_store_db=conninfo, af_db_conninfo="off")
    standby.server = standby._spawn("afserver", [sys.executable, "-m", "workers.supervisor", "-v"])
    wait_for(lambda: "standby" in standby.afcmd("stat").stderr, 20, "the standby's refusal")
    return active, standby


def kill_tree(farm: Farm, sig: int) -> list[psutil.Process]:
    assert farm.server is not None
    root = psutil.Process(farm.server.pid)
    procs = [root, *root.children(recursive=True)]
    for proc in procs:
        proc.send_signal(sig)
    return procs


def test_the_standby_refuses_then_takes_over_a_killed_active(
    make_farm: Callable[..., Farm], pg_conninfo: str
) -> None:
    active, standby = two_servers(make_farm, pg_conninfo)
    refused = standby.afcmd("stat")
    assert refused.returncode != 0
    assert "standby, active is afserver@" in refused.stderr
    assert f":{active.port}" in refused.stderr
    job = submit(active, {"name": "kept", "blocks": [numeric(10)]})
    kill_tree(active, signal.SIGKILL)
    started = time.monotonic()
    wait_for(lambda: standby.afcmd("stat").returncode == 0, 10, "the standby serving")
    print(f"\nstandby serving {time.monotonic() - started:.2f} s after kill -9 of the active")
    assert standby.job(job)["name"] == "kept"
    stat = json.loads(standby.afcmd("stat", "--json").stdout)
    server = stat["scheduler"]["store"]["server"]
    assert server["role"] == "active" and server["name"].endswith(f":{standby.port}")
    assert "took over the store" in standby.log("afserver")


def test_a_frozen_active_loses_the_store_and_commits_nothing(
    make_farm: Callable[..., Farm], pg_conninfo: str
) -> None:
    active, standby = two_servers(make_farm, pg_conninfo)
    frozen = kill_tree(active, signal.SIGSTOP)
    try:
        wait_for(lambda: standby.afcmd("stat").returncode == 0, 20, "the standby serving")
    finally:
        for proc in frozen:
            proc.send_signal(signal.SIGCONT)
    wait_for(
        lambda: (
            "the store's lock was lost" in active.log("afserver")
            or "session was lost" in active.log("afserver")
        ),
        20,
        "the old active to find it lost the store",
    )
    with psycopg.connect(pg_conninfo) as db:
        owner = json.loads(
            db.execute("SELECT value FROM meta WHERE key='active_server'").fetchone()[0]
        )
    assert owner["server"].endswith(f":{standby.port}")
    # restarted, the old active is a standby now that names the new one
    wait_for(
        lambda: f":{standby.port}" in active.afcmd("stat").stderr, 30, "the old active as standby"
    )


RENDERS = ("r1", "r2", "r3", "r4")
TASKS = 500


def test_a_500_task_job_survives_kill_9_of_the_active_each_task_once(
    make_farm: Callable[..., Farm], pg_conninfo: str, tmp_path: Path
) -> None:
    """The acceptance run: four renders list both servers; the active's whole tree is killed
    midway; the standby serves within 10 s, the renders move to it with their running tasks,
    and every task runs to success exactly once."""
    active, standby = two_servers(make_farm, pg_conninfo)
    servers = f"127.0.0.1:{active.port},127.0.0.1:{standby.port}"
    for name in RENDERS:
        active.start_render(name, "--server", servers)
    wait_for(lambda: active.online() == set(RENDERS), 30, "renders online")
    markers = tmp_path / "markers"
    markers.mkdir()
    command = (
        f'echo "$AF_TASK_ATTEMPT" >> {markers}/start.@#@; sleep 0.1; '
        f'echo "$AF_TASK_ATTEMPT" >> {markers}/done.@#@'
    )
    block = {
        "name": "b",
        "flags": 1,
        "frame_first": 1,
        "frame_last": TASKS,
        "command": command,
        "capacity": 250,
    }
    job = submit(active, {"name": "failover", "blocks": [block]})
    wait_for(lambda: active.job(job)["tasks_done"] >= 100, 60, "100 tasks done")
    kill_tree(active, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: standby.afcmd("stat").returncode == 0, 10, "the standby serving")
    print(f"\nstandby serving {time.monotonic() - killed:.2f} s after kill -9 of the active")
    wait_for(lambda: "DON" in standby.job(job)["state"], 120, "the job done on the new active")
    for n in range(1, TASKS + 1):
        started = (markers / f"start.{n}").read_text().split()
        done = (markers / f"done.{n}").read_text().split()
        assert len(started) == 1, f"task {n} started {len(started)} times: attempts {started}"
        assert done == started, f"task {n}: done {done}, started {started}"
    tasks = standby.tasks(job)
    assert len(tasks) == TASKS and all("DON" in t["state"] for t in tasks)


def end_every_session(conninfo: str) -> None:
    """What a PostgreSQL restart does to the farm's sessions, without restarting the server."""
    with psycopg.connect(conninfo, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]
    assert ended >= 2  # the active's and the standby's sessions at least


def restart_postgresql(conninfo: str) -> None:
    """A real restart of the machine's PostgreSQL cluster (CI only: other sessions share it)."""
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        timeout=120,
    )

    def accepting() -> bool:
        try:
            psycopg.connect(conninfo, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    wait_for(accepting, 60, "PostgreSQL accepting connections again")


def _restart_allowed() -> bool:
    return os.environ.get(PG_RESTART_ENV) == "1" and shutil.which("pg_ctlcluster") is not None


@pytest.mark.parametrize(
    "disruption",
    [
        pytest.param(end_every_session, id="sessions-ended"),
        pytest.param(
            restart_postgresql,
            id="postgresql-restarted",
            marks=[
                pytest.mark.serial,
                pytest.mark.skipif(
                    not _restart_allowed(),
                    reason=f"restarts the machine's PostgreSQL: only where {PG_RESTART_ENV}=1 (CI)",
                ),
            ],
        ),
    ],
)
def test_postgresql_lost_under_a_running_farm_loses_nothing(
    make_farm: Callable[..., Farm],
    pg_conninfo: str,
    tmp_path: Path,
    disruption: Callable[[str], None],
) -> None:
    """PostgreSQL restarted (or every session of the farm's database ended, which is what a
    restart does to the farm) under a running farm: one server becomes active again (either),
    the renders find it, and the job ends with each task done once."""
    active, standby = two_servers(make_farm, pg_conninfo)
    servers = f"127.0.0.1:{active.port},127.0.0.1:{standby.port}"
    for name in RENDERS[:2]:
        active.start_render(name, "--server", servers)
    wait_for(lambda: active.online() == set(RENDERS[:2]), 30, "renders online")
    markers = tmp_path / "markers"
    markers.mkdir()
    block = {
        "name": "b",
        "flags": 1,
        "frame_first": 1,
        "frame_last": 100,
        "command": f'echo "$AF_TASK_ATTEMPT" >> {markers}/done.@#@; sleep 0.05',
        "capacity": 250,
    }
    job = submit(active, {"name": "pg-restart", "blocks": [block]})
    wait_for(lambda: active.job(job)["tasks_done"] >= 20, 60, "20 tasks done")
    disruption(pg_conninfo)

    def serving() -> Farm | None:
        for farm in (active, standby):
            if farm.afcmd("stat").returncode == 0:
                return farm
        return None

    farm = wait_for(serving, 30, "a server active again")
    wait_for(lambda: "DON" in farm.job(job)["state"], 120, "the job done")
    for n in range(1, 101):
        assert len((markers / f"done.{n}").read_text().split()) == 1, f"task {n} ran twice"


def test_a_takeover_is_in_the_logs_table(make_farm: Callable[..., Farm], pg_conninfo: str) -> None:
    """Statistics rows wait in the PostgreSQL store's outbox; the new active's stats writer
    (the old one is gone) moves them, its takeover line among them."""
    import sqlite3

    active = make_farm(af_store_db=pg_conninfo)
    active.start_server()
    standby = make_farm(af_store_db=pg_conninfo)
    standby.server = standby._spawn("afserver", [sys.executable, "-m", "workers.supervisor", "-v"])
    wait_for(lambda: "standby" in standby.afcmd("stat").stderr, 20, "the standby's refusal")
    kill_tree(active, signal.SIGKILL)
    wait_for(lambda: standby.afcmd("stat").returncode == 0, 10, "the standby serving")

    def took_over() -> bool:
        db = sqlite3.connect(standby.store / "stats.sqlite")
        try:
            infos = [r[0] for r in db.execute("SELECT info FROM logs")]
        finally:
            db.close()
        return any("from afserver@" in i and f":{active.port}" in i for i in infos)

    wait_for(took_over, 20, "the takeover line in the logs table")
    with psycopg.connect(pg_conninfo) as db:
        wait_for(
            lambda: db.execute("SELECT count(*) FROM stats_outbox").fetchone()[0] == 0,
            10,
            "the outbox emptied",
        )
