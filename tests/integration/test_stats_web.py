"""The statistics pages on a real afserver: real renders run two users' jobs with errors,
the jobs are deleted, and the pages and the JSON API show what the database holds.

The browser part loads the pages in headless chromium, reads the numbers the graph and the
tables show, compares them with the database, and saves screenshots in the test's folder.
"""

from __future__ import annotations

import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Farm, free_port, submit, wait_for
from tests.conftest import web_call as call

pytestmark = pytest.mark.integration

FAILS = "test $(( @#@ % 5 )) -ne 0 || { echo frame @#@ fails; exit 1; }"
JOBS = (  # name, user, folder, service, tasks
    ("shot010", "ann", "/proj/seq1/shot010", "nuke", 30),
    ("shot020", "bob", "/proj/seq2/shot020", "maya", 20),
)


def db_rows(farm: Farm, sql: str, *params: Any) -> list[tuple]:
    db = sqlite3.connect(farm.store / "stats.sqlite")
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


@pytest.fixture
def stats_farm(make_web_farm) -> Farm:  # type: ignore[no-untyped-def]
    """A farm whose two jobs ran and were deleted, with all their rows in the database."""
    farm = make_web_farm("r1", "r2", "r3")
    ids = []
    for name, user, folder, service, tasks in JOBS:
        block = {
            "name": "b",
            "service": service,
            "flags": 1,
            "frame_first": 1,
            "frame_last": tasks,
            "command": FAILS,
            "errors_retries": 0,
            "errors_avoid_host": 0,
        }
        job = {"name": name, "user_name": user, "folders": {"output": folder}, "blocks": [block]}
        ids.append(submit(farm, job))
    for job_id, (_, _, _, _, tasks) in zip(ids, JOBS, strict=True):
        wait_for(
            lambda j=job_id, n=tasks: farm.job(j)["tasks_done"] + farm.job(j)["tasks_error"] == n,
            60,
            "all tasks ended",
        )
        assert farm.afcmd("--admin", "jdel", str(job_id)).returncode == 0
    total = sum(t for *_, t in JOBS)
    wait_for(
        lambda: (
            db_rows(farm, "SELECT count(*) FROM tasks")[0][0] == total
            and db_rows(farm, "SELECT count(*) FROM jobs")[0][0] == len(JOBS)
        ),
        20,
        "statistics rows written",
    )
    wait_for(lambda: call(farm, "GET", "/api/stats/jobs")[0] == 200, 15, "the web process serving")
    return farm


def expected_tasks(farm: Farm) -> dict[str, tuple[int, int]]:
    rows = db_rows(farm, "SELECT service, count(*), sum(error) FROM tasks GROUP BY service")
    return {service: (count, errors) for service, count, errors in rows}


def test_api_numbers_match_the_database(stats_farm: Farm) -> None:
    farm = stats_farm
    want = expected_tasks(farm)
    assert want == {"nuke": (30, 6), "maya": (20, 4)}  # every fifth frame fails
    status, tasks = call(farm, "GET", "/api/stats/tasks?group=service")
    assert status == 200
    got = {r["name"]: (r["tasks"], r["errors"]) for r in tasks["rows"]}
    assert got == want
    status, jobs = call(farm, "GET", "/api/stats/jobs?group=user")
    by_user = {r["name"]: r for r in jobs["rows"]}
    assert set(by_user) == {"ann", "bob"}
    assert by_user["ann"]["done_percent"] == 80.0 and by_user["ann"]["tasks_avg"] == 30
    status, folders = call(farm, "GET", "/api/stats/tasks?group=folder&depth=2")
    assert {r["name"]: r["tasks"] for r in folders["rows"]} == {"/proj/seq1": 30, "/proj/seq2": 20}
    status, graph = call(farm, "GET", "/api/stats/graph?group=user")
    assert graph["total"] == 50 and len(graph["buckets"]) <= 100
    assert {s["name"]: sum(s["counts"]) for s in graph["series"]} == {"ann": 30, "bob": 20}
    status, logs = call(farm, "GET", "/api/stats/logs?info=submitted")
    assert {r["object"] for r in logs["rows"]} == {"shot010", "shot020"}

    # bad input: a clear 400, nothing changed
    for path in (
        "/api/stats/tasks?group=colour",
        "/api/stats/jobs?from=yesterday",
        "/api/stats/logs?x=1",
    ):
        status, body = call(farm, "GET", path)
        assert status == 400 and body["error"], path
    status, body = call(farm, "GET", "/api/stats/jobs?from=2030-01-01&to=2020-01-01")
    assert status == 400 and "empty" in body["error"]
    status, body = call(farm, "POST", "/api/stats/delete", {"folder": "/proj/seq1"})
    assert status == 400 and "confirm" in body["error"]
    assert db_rows(farm, "SELECT count(*) FROM tasks")[0][0] == 50

    # deleting a folder's records, then records before a date
    status, body = call(
        farm, "POST", "/api/stats/delete", {"folder": "/proj/seq1", "confirm": True}
    )
    assert status == 200 and body["deleted"] == {"jobs": 1, "tasks": 30}
    assert expected_tasks(farm) == {"maya": (20, 4)}
    status, body = call(farm, "POST", "/api/stats/delete", {"before": 4102444800, "confirm": True})
    assert status == 200 and body["deleted"]["tasks"] == 20
    assert db_rows(farm, "SELECT count(*) FROM tasks")[0][0] == 0


def shown_table(page: Any, table_id: str, column: str) -> dict[str, str]:
    return page.eval_on_selector_all(
        f"#{table_id} tbody tr[data-name]",
        f"""rows => Object.fromEntries(rows.map(r => [r.dataset.name,
            r.querySelector('td[data-col="{column}"]').dataset.value]))""",
    )


def test_pages_in_chromium_show_the_database(
    stats_farm: Farm, browser: Any, tmp_path: Path
) -> None:
    farm = stats_farm
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(f"{farm.web}/stats/?group=service")
    graph = page.locator("svg.graph")
    assert graph.is_visible()
    want = expected_tasks(farm)
    assert int(graph.get_attribute("data-total")) == sum(n for n, _ in want.values())
    drawn = page.eval_on_selector_all(
        "svg.graph rect.bar",
        "bars => bars.reduce((m, b) => (m[b.dataset.series] = (m[b.dataset.series] || 0)"
        " + Number(b.dataset.count), m), {})",
    )
    assert drawn == {service: n for service, (n, _) in want.items()}
    assert shown_table(page, "tasks-table", "tasks") == {s: str(n) for s, (n, _) in want.items()}
    assert shown_table(page, "tasks-table", "errors") == {s: str(e) for s, (_, e) in want.items()}
    blocks = db_rows(farm, "SELECT service, count(*) FROM jobs GROUP BY service")
    assert shown_table(page, "jobs-table", "blocks") == {s: str(n) for s, n in blocks}
    page.screenshot(path=str(tmp_path / "stats-overview.png"), full_page=True)

    page.select_option("select[name=group]", "folder")
    page.fill("input[name=depth]", "2")
    page.click("form.range button")
    page.wait_for_url("**/stats/?*group=folder*")
    assert shown_table(page, "tasks-table", "tasks") == {"/proj/seq1": "30", "/proj/seq2": "20"}

    page.goto(f"{farm.web}/stats/logs?info=submitted")
    objects = page.eval_on_selector_all(
        "#logs-table td[data-col=object]", "cells => cells.map(c => c.textContent)"
    )
    assert sorted(objects) == ["shot010", "shot020"]
    page.screenshot(path=str(tmp_path / "stats-logs.png"), full_page=True)

    page.goto(f"{farm.web}/stats/admin")
    form = page.locator("form.danger").first
    form.locator("input[name=folder]").fill("/proj/seq2")
    form.locator("input[name=confirm]").check()
    form.locator("button").click()
    assert "deleted 1 jobs, 20 tasks records" in page.locator("p.done").text_content()
    assert expected_tasks(farm) == {"nuke": (30, 6)}
    page.screenshot(path=str(tmp_path / "stats-admin.png"), full_page=True)
    assert (tmp_path / "stats-overview.png").stat().st_size > 10_000


def test_a_dead_statistics_database_is_a_clear_503(make_web_farm) -> None:  # type: ignore[no-untyped-def]
    dead = f"host=127.0.0.1 port={free_port()} user=nobody dbname=none connect_timeout=1"
    farm = make_web_farm(af_db_conninfo=dead)
    wait_for(lambda: call(farm, "GET", "/api/farm/users")[0] == 200, 15, "the web process serving")
    status, body = call(farm, "GET", "/api/stats/tasks")
    assert status == 503 and "statistics database" in body["error"]
    assert "127.0.0.1" in body["error"]  # the driver's own words, naming where it tried
    with pytest.raises(urllib.error.HTTPError) as page:
        urllib.request.urlopen(f"{farm.web}/stats/", timeout=10)
    assert page.value.code == 503
    assert "statistics database" in page.value.read().decode()
    assert call(farm, "GET", "/api/farm/jobs")[0] == 200  # the monitor side does not need it
