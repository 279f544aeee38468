"""Report queries on both real databases (an SQLite file and the machine's PostgreSQL): the
same rows give the same tables, graph and logs, and deletions remove exactly what they name."""

from __future__ import annotations

import time
from typing import Any

import pytest

from stats import reports
from stats.backends import Backend, PostgresBackend, SQLiteBackend
from stats.reports import DAY, ReportError, Span
from web.params import parse_query
from web.svg import tasks_graph

NOW = 1_800_000_000


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Any) -> Backend:
    if request.param == "sqlite":
        db: Backend = SQLiteBackend(tmp_path / "stats.sqlite")
    else:
        db = PostgresBackend(request.getfixturevalue("pg_conninfo"))
    db.update_tables()
    tasks = []
    for i in range(60):  # 60 runs over 6 hours, 3 folders, 2 services, 3 users
        tasks.append(
            {
                "folder": f"/proj/seq{i % 3}/shot{i % 2}",
                "service": "nuke" if i % 2 else "maya",
                "username": ("ann", "bob", "cid")[i % 3],
                "time_started": NOW - 360 * i - 120,
                "time_done": NOW - 360 * i,
                "error": 1 if i % 10 == 0 else 0,
                "capacity": 1000 if i % 4 else 2000,
                "hostname": "r1",
            }
        )
    db.insert("tasks", tasks)
    db.insert(
        "jobs",
        [
            {"folder": "/proj/seq0/a", "service": "nuke", "username": "ann", "serial": 1,
             "tasks_quantity": 10, "tasks_done": 10, "run_time_sum": 100, "capacity": 1000,
             "time_started": NOW - 500, "time_done": NOW - 100},
            {"folder": "/proj/seq0/b", "service": "maya", "username": "ann", "serial": 2,
             "tasks_quantity": 30, "tasks_done": 15, "run_time_sum": 300, "capacity": 3000,
             "time_started": NOW - 500, "time_done": NOW - 100},
            {"folder": "/other", "service": "maya", "username": "bob", "serial": 3,
             "tasks_quantity": 5, "tasks_done": 5, "run_time_sum": 50, "capacity": 1000,
             "time_started": NOW - 20 * DAY, "time_done": NOW - 19 * DAY},
        ],
    )  # fmt: skip
    db.insert(
        "logs",
        [
            {"time": NOW - 50, "subject": "ann@ws1", "type": "jobs", "object": "shot",
             "info": "submitted: id 2"},
            {"time": NOW - 40, "subject": "bob@ws2", "type": "jobs", "object": "ids: 2",
             "info": "refused: not yours"},
            {"time": NOW - 30, "subject": "r1", "type": "renders", "object": "r1",
             "info": "online from 127.0.0.1"},
        ],
    )  # fmt: skip
    return db


WEEK = Span.of(None, NOW + 1, NOW)


def test_tasks_grouped_by_service_user_and_folder_depth(backend: Backend) -> None:
    by_service = {r["name"]: r for r in reports.tasks_table(backend, WEEK, "service")}
    assert {k: (r["tasks"], r["errors"]) for k, r in by_service.items()} == {
        "maya": (30, 6),
        "nuke": (30, 0),
    }
    assert by_service["maya"]["done_percent"] == 80.0
    assert by_service["nuke"]["run_time_avg"] == 120.0
    assert by_service["maya"]["user"]["share"] == pytest.approx(33.3)
    by_depth1 = reports.tasks_table(backend, WEEK, "folder", 1)
    assert [(r["name"], r["tasks"]) for r in by_depth1] == [("/proj", 60)]
    by_depth3 = {r["name"]: r["tasks"] for r in reports.tasks_table(backend, WEEK, "folder", 3)}
    assert len(by_depth3) == 6 and sum(by_depth3.values()) == 60
    capacity = reports.tasks_table(backend, WEEK, "username")
    assert sum(r["capacity_avg"] * r["tasks"] for r in capacity) == 15 * 2000 + 45 * 1000


def test_jobs_table_sums_blocks_in_the_time_range(backend: Backend) -> None:
    rows = reports.jobs_table(backend, WEEK, "folder", 2)
    assert [r["name"] for r in rows] == ["/proj/seq0"]  # the 20 days old block is outside
    row = rows[0]
    assert (row["jobs"], row["blocks"], row["tasks_avg"], row["capacity_avg"]) == (2, 2, 20, 2000)
    assert row["done_percent"] == pytest.approx(100 * 25 / 40)
    assert row["run_time_sum"] == 400
    month = Span.of(NOW - 30 * DAY, NOW + 1, NOW)
    assert {r["name"] for r in reports.jobs_table(backend, month, "username")} == {"ann", "bob"}


def test_tasks_graph_buckets_and_series(backend: Backend) -> None:
    six_hours = Span(NOW - 6 * 3600, NOW + 1)
    graph = reports.tasks_graph(backend, six_hours, "service")
    assert graph["bucket_seconds"] == 3600 and len(graph["buckets"]) <= 100
    assert graph["total"] == 60
    assert {s["name"]: sum(s["counts"]) for s in graph["series"]} == {"maya": 30, "nuke": 30}
    assert all(sum(s["counts"][i] for s in graph["series"]) == 10 for i in range(1, 6))
    week = reports.tasks_graph(backend, WEEK, "username")
    assert week["bucket_seconds"] == DAY and len(week["buckets"]) <= 8
    svg = tasks_graph(week)
    assert svg.count('class="bar"') >= 3 and 'data-total="60"' in svg
    year = reports.tasks_graph(backend, Span(NOW - 700 * DAY, NOW), "service")
    assert len(year["buckets"]) <= 100 and year["bucket_seconds"] % (7 * DAY) == 0


def test_logs_filters_are_case_insensitive_substrings(backend: Backend) -> None:
    assert len(reports.logs_table(backend, WEEK, {})) == 3
    rows = reports.logs_table(backend, WEEK, {"info": "REFUSED", "subject": "bob"})
    assert [r["object"] for r in rows] == ["ids: 2"]
    assert reports.logs_table(backend, WEEK, {"type": "renders"})[0]["subject"] == "r1"
    assert [r["time"] for r in reports.logs_table(backend, WEEK, {})] == sorted(
        [NOW - 50, NOW - 40, NOW - 30], reverse=True
    )
    with pytest.raises(ReportError, match="filter logs by"):
        reports.logs_table(backend, WEEK, {"password": "x"})


def test_delete_folder_and_before_a_date(backend: Backend) -> None:
    assert reports.delete_folder(backend, "/proj/seq0/") == {"jobs": 2, "tasks": 20}
    assert reports.delete_folder(backend, "/proj/seq0") == {"jobs": 0, "tasks": 0}
    assert reports.delete_folder(backend, "/proj/seq_") == {"jobs": 0, "tasks": 0}  # no wildcard
    with pytest.raises(ReportError):
        reports.delete_folder(backend, "/")
    deleted = reports.delete_before(backend, NOW - 3 * 3600)
    assert deleted["jobs"] == 1 and deleted["logs"] == 0
    assert backend.count("tasks") == 40 - deleted["tasks"]


def test_query_parameters_are_checked() -> None:
    now = time.time()
    q = parse_query({"group": "user", "depth": "2"}, now)
    assert (q.group, q.depth, q.span.end - q.span.begin) == ("username", 2, 7 * DAY)
    day = parse_query({"from": "2026-11-01", "to": "2026-11-01"}, now).span
    assert day.end - day.begin == DAY  # a day given as the end is included
    for bad, text in (
        ({"group": "colour"}, "group"),
        ({"depth": "-1"}, "depth"),
        ({"from": "soon"}, "from"),
        ({"to": "2026-02-30"}, "to"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "empty"),
        ({"sort": "x"}, "unknown"),
    ):
        with pytest.raises(ReportError, match=text):
            parse_query(bad, now)
