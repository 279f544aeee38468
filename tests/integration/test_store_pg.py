"""afserver on a PostgreSQL store (af_store_db): the farm comes back whole after a restart,
and its statistics rows leave the store's outbox. Real PostgreSQL at 127.0.0.1:5432 (skipped
with the reason without one, failed with AF_TEST_REQUIRE_PG)."""

from __future__ import annotations

import signal
from collections.abc import Callable

import psycopg
import pytest

from tests.conftest import Farm, submit, wait_for
from tests.integration.test_restart import numeric

pytestmark = pytest.mark.integration


def test_a_farm_on_postgresql_comes_back_whole_after_a_restart(
    make_farm: Callable[..., Farm], pg_conninfo: str
) -> None:
    farm = make_farm(af_store_db=pg_conninfo, af_db_conninfo="off")
    farm.start_server()
    ids = [submit(farm, {"name": f"job{n}", "blocks": [numeric(20)]}) for n in range(5)]
    farm.ask(
        {
            "action": {
                "type": "jobs",
                "ids": ids[:2],
                "block_ids": [0],
                "operation": {"type": "skip"},
            }
        }
    )
    farm.start_render("r1")
    wait_for(lambda: farm.job(ids[2])["tasks_done"] == 20, 60, "a job run on the render")
    before = {
        j["id"]: (j["state"], j["tasks_done"]) for j in farm.ask({"get": {"type": "jobs"}})["jobs"]
    }
    assert farm.server is not None
    farm.server.send_signal(signal.SIGTERM)
    farm.server.wait(10)
    farm._client.close()
    farm._client = None
    farm.start_server()
    wait_for(
        lambda: all(farm.job(i)["tasks_done"] == 20 for i in ids), 60, "every job done, restarted"
    )
    after = {j["id"]: j["tasks_done"] for j in farm.ask({"get": {"type": "jobs"}})["jobs"]}
    assert {i: before[i][1] for i in ids[:3]} == {i: after[i] for i in ids[:3]}
    assert "restored from postgresql" in farm.log("afserver")
    with psycopg.connect(pg_conninfo) as db:
        assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 5
    assert not (farm.store / "farm.sqlite").exists()


def test_store_copy_moves_a_farm_from_sqlite_to_postgresql(
    make_farm: Callable[..., Farm], pg_conninfo: str
) -> None:
    farm = make_farm(af_db_conninfo="off")
    farm.start_server()
    ids = [submit(farm, {"name": f"job{n}", "blocks": [numeric(10)]}) for n in range(3)]
    farm.ask(
        {
            "action": {
                "type": "jobs",
                "ids": ids[:1],
                "block_ids": [0],
                "operation": {"type": "skip"},
            }
        }
    )
    before = {j["id"]: (j["name"], j["state"]) for j in farm.ask({"get": {"type": "jobs"}})["jobs"]}
    assert farm.server is not None
    farm.server.send_signal(signal.SIGTERM)
    farm.server.wait(10)
    farm._client.close()
    farm._client = None
    copied = farm.afcmd("store_copy", "--to", pg_conninfo)
    assert copied.returncode == 0, copied.stderr
    assert '"jobs": 3' in copied.stdout
    again = farm.afcmd("store_copy", "--to", pg_conninfo)  # the target is not empty now
    assert again.returncode != 0 and "not empty" in again.stderr

    moved = make_farm(af_store_db=pg_conninfo, af_db_conninfo="off")
    moved.start_server()
    after = {j["id"]: (j["name"], j["state"]) for j in moved.ask({"get": {"type": "jobs"}})["jobs"]}
    assert after == before
    stat = moved.afcmd("stat")
    assert "PostgreSQL" in stat.stdout and "active since" in stat.stdout
    check = moved.afcmd("store_check")
    assert check.returncode == 0 and '"backend": "postgresql"' in check.stdout
