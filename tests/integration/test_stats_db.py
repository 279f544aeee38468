"""The statistics backends against real databases: the machine's PostgreSQL (a database the
test creates) and an SQLite file; and afcmd's db_* commands."""

from __future__ import annotations

import psycopg
import pytest

from stats.backends import OK, Backend, PostgresBackend, SQLiteBackend, StatsError
from tests.conftest import Farm, wait_for

pytestmark = pytest.mark.integration


def exercise(backend: Backend) -> None:
    assert backend.check() == OK
    assert set(backend.update_tables()) == {"jobs", "tasks", "logs"}
    backend.insert(
        "tasks",
        [{"jobname": "shot", "hostname": "r1", "error": 1, "time_started": 5, "time_done": 9}],
    )
    backend.insert("jobs", [{"jobname": "shot", "blockname": "b", "tasks_done": 3}])
    assert backend.count("tasks") == 1 and backend.count("jobs") == 1
    assert backend.update_tables() == []
    backend.reset(["tasks"])
    assert backend.count("tasks") == 0 and backend.count("jobs") == 1


def test_sqlite_backend(tmp_path) -> None:  # type: ignore[no-untyped-def]
    exercise(SQLiteBackend(tmp_path / "stats.sqlite"))


def test_postgres_backend(pg_conninfo: str) -> None:
    exercise(PostgresBackend(pg_conninfo))
    with psycopg.connect(pg_conninfo) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type, character_maximum_length FROM information_schema.columns "
            "WHERE table_name = 'tasks' AND column_name IN ('command', 'hostname', 'time_done') ORDER BY column_name"
        ).fetchall()
    assert rows == [
        ("command", "character varying", 4096),
        ("hostname", "character varying", 512),
        ("time_done", "bigint", None),
    ]


def test_a_dead_database_is_a_clear_error() -> None:
    with pytest.raises(StatsError, match="127.0.0.1"):
        PostgresBackend("host=127.0.0.1 port=1 user=postgres dbname=x", timeout=1).check()


def test_afcmd_db_commands(make_farm, pg_conninfo: str) -> None:  # type: ignore[no-untyped-def]
    farm: Farm = make_farm(af_db_conninfo=pg_conninfo)
    check = farm.afcmd("db_check")
    said = check.stdout.strip()
    assert (
        check.returncode == 0
        and said == f"PostgreSQL {pg_conninfo}: Database connection is working"
    )
    reset = farm.afcmd("db_reset_all", "--yes")
    assert reset.returncode == 0, reset.stderr
    with psycopg.connect(pg_conninfo) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
    assert tables == {"jobs", "tasks", "logs"}
    refused = farm.afcmd("db_reset_all")  # no --yes and no one to say yes
    assert refused.returncode != 0
    assert farm.afcmd("db_updatetables").stdout.strip() == "tables are up to date"

    wrong = make_farm(af_db_conninfo=pg_conninfo.replace("dbname=", "dbname=no_such_db_"))
    bad = wrong.afcmd("db_check")
    assert bad.returncode == 1 and "no_such_db_" in bad.stderr and "does not exist" in bad.stderr


def test_afcmd_db_check_with_the_embedded_database(farm: Farm, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """db_check names what it checked, never makes an empty database, and finds the one of
    the server that answers even when this shell's af_store_folder is another folder."""
    stats = farm.store / "stats.sqlite"
    missing = farm.afcmd("db_check")  # no server, no database yet
    assert missing.returncode == 1 and f"no statistics database at {stats}" in missing.stderr
    assert not stats.exists()
    farm.start_server()
    wait_for(stats.exists, 20, "the server's statistics database")
    check = farm.afcmd("db_check")
    assert check.stdout.strip() == f"SQLite {stats}: Database connection is working"
    elsewhere = {"AF_STORE_FOLDER": str(tmp_path / "afcmds-own")}  # make run's ./var/store case
    check = farm.afcmd("db_check", env=elsewhere)
    assert check.stdout.strip() == f"SQLite {stats}: Database connection is working"
    assert f"the server's store folder {farm.store}" in check.stderr
    assert not (tmp_path / "afcmds-own").exists()
    assert farm.afcmd("db_reset_all", "--yes").returncode == 0
