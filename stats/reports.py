"""Report queries of the statistics pages (SPEC B §10), the same SQL on both backends.

The database does the heavy part (filter by time, group by folder, service and user); the
folding into the page's grouping (a folder depth, a service, a user) and the favourite
shares are done here in plain Python over those few grouped rows, so one query serves every
grouping and the numbers of a group are sums of the same rows whatever the page shows.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from stats.backends import Backend

DAY = 86400
DEFAULT_DAYS = 7
MAX_BUCKETS = 100
BUCKETS = (60, 3600, DAY, 7 * DAY)  # minute, hour, day, week
GROUPS = ("folder", "service", "username")
LOG_COLUMNS = ("subject", "type", "object", "info")
LOG_LIMIT = 1000
SERIES_MAX = 10  # series shown in a graph; the rest are summed as "other"


class ReportError(ValueError):
    """A report asked for something that makes no sense (the text says what)."""


@dataclass(frozen=True, slots=True)
class Span:
    """A time range in epoch seconds, `begin` included, `end` excluded."""

    begin: int
    end: int

    @classmethod
    def of(cls, begin: int | None, end: int | None, now: float) -> Span:
        end = int(now) + 1 if end is None else end
        begin = end - DEFAULT_DAYS * DAY if begin is None else begin
        if begin >= end:
            raise ReportError(f"the time range is empty: from {begin} is not before to {end}")
        return cls(begin, end)


def folder_key(folder: str, depth: int) -> str:
    """`/proj/seq/shot` at depth 1 is `/proj`; depth 0 keeps the whole folder."""
    if depth <= 0:
        return folder or "/"
    parts = [p for p in (folder or "").split("/") if p]
    return "/" + "/".join(parts[:depth])


def _group_key(row: dict[str, Any], group: str, depth: int) -> str:
    if group not in GROUPS:
        raise ReportError(f"group by one of {', '.join(GROUPS)}, not {group!r}")
    value = row[group] or ""
    return folder_key(value, depth) if group == "folder" else value


def _favourite(counts: Counter[str], total: int) -> dict[str, Any]:
    if not counts or total <= 0:
        return {"name": "", "share": 0.0}
    name, count = counts.most_common(1)[0]
    return {"name": name, "share": round(100.0 * count / total, 1)}


JOBS_SQL = """SELECT folder, service, username, count(*), count(DISTINCT serial),
 sum(tasks_quantity), sum(tasks_done), sum(capacity), sum(run_time_sum)
 FROM jobs WHERE time_done >= {p} AND time_done < {p}
 GROUP BY folder, service, username"""

TASKS_SQL = """SELECT folder, service, username, count(*), sum(error), sum(capacity),
 sum(time_done - time_started)
 FROM tasks WHERE time_done >= {p} AND time_done < {p}
 GROUP BY folder, service, username"""


def _fetch(backend: Backend, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    return backend.query(sql.format(p=backend.placeholder), params)


def jobs_table(backend: Backend, span: Span, group: str = "folder", depth: int = 1) -> list[dict]:
    """Job blocks per group: jobs, blocks, average tasks and capacity, run time sum and
    average per block, done %, and the group's favourite service and user."""
    groups: dict[str, dict[str, Any]] = {}
    for folder, service, user, blocks, jobs, qty, done, cap, run in _fetch(
        backend, JOBS_SQL, (span.begin, span.end)
    ):
        row = {"folder": folder, "service": service, "username": user}
        g = groups.setdefault(
            _group_key(row, group, depth),
            {"blocks": 0, "jobs": 0, "tasks": 0, "done": 0, "capacity": 0, "run_time": 0,
             "services": Counter(), "users": Counter()},
        )  # fmt: skip
        g["blocks"] += blocks
        g["jobs"] += jobs
        g["tasks"] += int(qty or 0)
        g["done"] += int(done or 0)
        g["capacity"] += int(cap or 0)
        g["run_time"] += int(run or 0)
        g["services"][service or ""] += blocks
        g["users"][user or ""] += blocks
    out = []
    for name, g in sorted(groups.items()):
        blocks = g["blocks"]
        out.append(
            {
                "name": name,
                "jobs": g["jobs"],
                "blocks": blocks,
                "tasks_avg": round(g["tasks"] / blocks, 1),
                "capacity_avg": round(g["capacity"] / blocks, 1),
                "run_time_sum": g["run_time"],
                "run_time_avg": round(g["run_time"] / blocks, 1),
                "done_percent": round(100.0 * g["done"] / g["tasks"], 1) if g["tasks"] else 0.0,
                "service": _favourite(g["services"], blocks),
                "user": _favourite(g["users"], blocks),
            }
        )
    return out


def tasks_table(backend: Backend, span: Span, group: str = "folder", depth: int = 1) -> list[dict]:
    """Task runs per group: runs, errors, average capacity, run time sum and average,
    done % (runs that did not end in error), favourite service and user."""
    groups: dict[str, dict[str, Any]] = {}
    for folder, service, user, runs, errors, cap, run in _fetch(
        backend, TASKS_SQL, (span.begin, span.end)
    ):
        row = {"folder": folder, "service": service, "username": user}
        g = groups.setdefault(
            _group_key(row, group, depth),
            {"runs": 0, "errors": 0, "capacity": 0, "run_time": 0,
             "services": Counter(), "users": Counter()},
        )  # fmt: skip
        g["runs"] += runs
        g["errors"] += int(errors or 0)
        g["capacity"] += int(cap or 0)
        g["run_time"] += int(run or 0)
        g["services"][service or ""] += runs
        g["users"][user or ""] += runs
    out = []
    for name, g in sorted(groups.items()):
        runs = g["runs"]
        out.append(
            {
                "name": name,
                "tasks": runs,
                "errors": g["errors"],
                "capacity_avg": round(g["capacity"] / runs, 1),
                "run_time_sum": g["run_time"],
                "run_time_avg": round(g["run_time"] / runs, 1),
                "done_percent": round(100.0 * (runs - g["errors"]) / runs, 1),
                "service": _favourite(g["services"], runs),
                "user": _favourite(g["users"], runs),
            }
        )
    return out


def bucket_grid(span: Span) -> tuple[int, int, int]:
    """(origin, size, count): the smallest of minute, hour, day, week that covers the span
    in at most MAX_BUCKETS buckets; longer spans get buckets of whole weeks."""
    for size in BUCKETS:
        origin = bucket_origin(span.begin, size)
        count = -(-(span.end - origin) // size)
        if count <= MAX_BUCKETS:
            return origin, size, count
    origin = bucket_origin(span.begin, BUCKETS[-1])
    size = BUCKETS[-1] * -(-(span.end - origin) // (BUCKETS[-1] * MAX_BUCKETS))
    return origin, size, -(-(span.end - origin) // size)


def bucket_origin(begin: int, size: int) -> int:
    """Where the first bucket starts: on a whole minute or hour, on local midnight for
    days, on a local Monday for weeks, so that bars read as calendar days and weeks."""
    if size < DAY:
        return begin - begin % size
    t = time.localtime(begin)
    midnight = int(time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1)))
    if size == DAY:
        return midnight
    monday = time.localtime(midnight - t.tm_wday * DAY + DAY // 2)  # noon: DST-proof day
    return int(time.mktime((monday.tm_year, monday.tm_mon, monday.tm_mday, 0, 0, 0, 0, 0, -1)))


# The bucket expression is written out (two integers) so that SELECT and GROUP BY are the
# same expression for PostgreSQL, which compares them as written.
GRAPH_SQL = """SELECT (time_done - {begin}) / {size}, folder, service, username, count(*)
 FROM tasks WHERE time_done >= {p} AND time_done < {p}
 GROUP BY (time_done - {begin}) / {size}, folder, service, username"""


def tasks_graph(backend: Backend, span: Span, group: str = "service", depth: int = 1) -> dict:
    """Finished task runs per time bucket, one series per group (the largest SERIES_MAX,
    the rest summed as "other")."""
    origin, size, count = bucket_grid(span)
    sql = GRAPH_SQL.format(begin=origin, size=int(size), p=backend.placeholder)
    per_series: dict[str, list[int]] = {}
    for bucket, folder, service, user, n in backend.query(sql, (span.begin, span.end)):
        row = {"folder": folder, "service": service, "username": user}
        series = per_series.setdefault(_group_key(row, group, depth), [0] * count)
        series[int(bucket)] += n
    ranked = sorted(per_series.items(), key=lambda item: (-sum(item[1]), item[0]))
    shown = dict(ranked[:SERIES_MAX])
    if len(ranked) > SERIES_MAX:
        shown["other"] = [
            sum(col) for col in zip(*(s for _, s in ranked[SERIES_MAX:]), strict=True)
        ]
    return {
        "begin": span.begin,
        "end": span.end,
        "bucket_seconds": size,
        "buckets": [origin + i * size for i in range(count)],
        "group": group,
        "series": [{"name": name, "counts": counts} for name, counts in shown.items()],
        "total": sum(sum(c) for c in per_series.values()),
    }


def logs_table(
    backend: Backend, span: Span, filters: dict[str, str], limit: int = LOG_LIMIT
) -> list[dict]:
    """Log rows, newest first, with case-insensitive substring filters per column (the
    original's ILIKE filters; `lower() LIKE` works on both databases)."""
    p = backend.placeholder
    where = [f"time >= {p}", f"time < {p}"]
    params: list[Any] = [span.begin, span.end]
    for column, text in filters.items():
        if column not in LOG_COLUMNS:
            raise ReportError(f"filter logs by {', '.join(LOG_COLUMNS)}, not {column!r}")
        if text:
            where.append(f"lower({column}) LIKE {p}")
            params.append(f"%{text.lower()}%")
    sql = (
        f"SELECT time, subject, type, object, info FROM logs WHERE {' AND '.join(where)}"
        f" ORDER BY time DESC LIMIT {int(limit)}"
    )
    rows = backend.query(sql, tuple(params))
    return [dict(zip(("time", *LOG_COLUMNS), r, strict=True)) for r in rows]


def delete_folder(backend: Backend, folder: str) -> dict[str, int]:
    """Drop a folder's records and those of the folders below it, from jobs and tasks."""
    folder = "/" + folder.strip("/") if folder.strip("/") else ""
    if not folder:
        raise ReportError("name a folder to delete (not the root: delete records by date)")
    p = backend.placeholder
    below = folder.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"

    def work(conn: Any) -> dict[str, int]:
        out = {}
        for table in ("jobs", "tasks"):
            sql = f"DELETE FROM {table} WHERE folder = {p} OR folder LIKE {p} ESCAPE '\\'"
            out[table] = conn.execute(sql, (folder, below)).rowcount
        return out

    return backend.run(work)


def delete_before(backend: Backend, before: int) -> dict[str, int]:
    """Drop records that finished before a time (logs by their time)."""
    p = backend.placeholder

    def work(conn: Any) -> dict[str, int]:
        out = {}
        for table, column in (("jobs", "time_done"), ("tasks", "time_done"), ("logs", "time")):
            out[table] = conn.execute(
                f"DELETE FROM {table} WHERE {column} < {p}", (before,)
            ).rowcount
        return out

    return backend.run(work)
