"""Statistics while dispatching: does keeping statistics slow the farm down?

Each round runs the same dispatch three times on a fresh afserver with K afrender
processes and one job of N `true` tasks: statistics off (`af_db_conninfo = off`), to the
embedded SQLite file, and to PostgreSQL (a database made for the run on 127.0.0.1:5432,
dropped after). The rounds interleave the three so that the machine's noise falls on all
of them alike; the ratio of each backend's median rate to the median rate with statistics
off is the figure checked against the target (>= 0.9).

Rows per second: from the submission until the last of the N task rows is in the
database, N divided by that time (the writer works behind the dispatch, in batches); and
the writer's own pace, rows written in its batches with nothing else running.

Prints one JSON line on stdout; logs go to stderr; exits 1 when a run failed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench._common import guarded, machine, report, submit, wait_for  # noqa: E402
from bench.dispatch import farm_in, wait_done  # noqa: E402
from stats.backends import Backend, PostgresBackend, SQLiteBackend  # noqa: E402
from stats.writer import BATCH  # noqa: E402

log = logging.getLogger("bench.stats")

PG_BASE = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
ROWS_TIMEOUT = 60.0
TARGET_RATIO = 0.9


@contextlib.contextmanager
def pg_database() -> Iterator[str | None]:
    """A fresh database for the run, or None when no PostgreSQL answers."""
    try:
        admin = psycopg.connect(PG_BASE, autocommit=True)
    except psycopg.Error as exc:
        log.warning("no PostgreSQL: %s", exc)
        yield None
        return
    name = f"af_bench_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    finally:
        with contextlib.suppress(psycopg.Error), psycopg.connect(PG_BASE, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def task_rows(conninfo: str, store: Path) -> int:
    try:
        if conninfo:
            with psycopg.connect(conninfo) as conn:
                return conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
        db = sqlite3.connect(store / "stats.sqlite")
        try:
            return db.execute("SELECT count(*) FROM tasks").fetchone()[0]
        finally:
            db.close()
    except (psycopg.Error, sqlite3.Error):
        return 0  # the table is made by the writer's first batch


def run_once(tmp_root: Path, name: str, conninfo: str, renders: int, tasks: int) -> dict[str, Any]:
    with farm_in(tmp_root, name, af_db_conninfo=conninfo) as farm:
        assert farm.client is not None
        farm.start_renders(renders)
        started = time.monotonic()
        job_id = submit(farm.client, name, tasks)
        wait_done(farm.client, job_id, tasks, timeout=120)
        wall = time.monotonic() - started
        out: dict[str, Any] = {"tasks_per_sec": round(tasks / wall, 1)}
        if conninfo != "off":
            store = farm.tmp / "store"
            wait_for(
                lambda: task_rows(conninfo, store) >= tasks,
                ROWS_TIMEOUT,
                f"{tasks} task rows in the statistics database",
            )
            out["rows_per_sec"] = round(tasks / (time.monotonic() - started), 1)
    return out


def bulk_rows_per_sec(backend: Backend, rows: int = 20_000) -> float:
    """The writer's own pace: task rows in batches of the writer's size, one transaction
    each, on a kept connection (COPY for PostgreSQL, executemany for SQLite)."""
    backend.update_tables()
    row = {"jobname": "bench", "blockname": "b", "hostname": "r1", "service": "generic",
           "command": "true", "time_started": 1, "time_done": 2, "username": "bench"}  # fmt: skip
    conn = backend.open()
    try:
        started = time.monotonic()
        for _ in range(rows // BATCH):
            backend.write(conn, {"tasks": [row] * BATCH})
        return round(rows / (time.monotonic() - started))
    finally:
        conn.close()


def run(renders: int, tasks: int, rounds: int) -> dict[str, Any]:
    errors: list[str] = []
    rates: dict[str, list[float]] = {"off": [], "sqlite": [], "postgresql": []}
    rows: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    with tempfile.TemporaryDirectory(prefix="af-bench-stats-") as tmp, pg_database() as pg:
        backends = {"off": "off", "sqlite": ""}
        if pg is not None:
            backends["postgresql"] = pg
        else:
            errors.append("postgresql: no PostgreSQL at 127.0.0.1:5432")
        bulk = {"sqlite": bulk_rows_per_sec(SQLiteBackend(Path(tmp) / "bulk.sqlite"))}
        if pg is not None:
            bulk["postgresql"] = bulk_rows_per_sec(PostgresBackend(pg))
        for r in range(rounds):
            for name, conninfo in backends.items():
                result = guarded(
                    f"{name} round {r}",
                    errors,
                    lambda n=name, c=conninfo, r=r: run_once(
                        Path(tmp), f"{n}{r}", c, renders, tasks
                    ),
                )
                if "tasks_per_sec" in result:
                    rates[name].append(result["tasks_per_sec"])
                if "rows_per_sec" in result:
                    rows[name].append(result["rows_per_sec"])
    median = {k: statistics.median(v) for k, v in rates.items() if v}
    out: dict[str, Any] = {
        "bench": "stats",
        "renders": renders,
        "tasks": tasks,
        "rounds": rounds,
        "tasks_per_sec": {k: v for k, v in rates.items() if v},
        "rows_per_sec_median": {k: round(statistics.median(v), 1) for k, v in rows.items() if v},
        "writer_rows_per_sec": bulk,
    }
    if "off" in median:
        out["ratio_vs_off"] = {
            k: round(v / median["off"], 3) for k, v in median.items() if k != "off"
        }
        out["target_ratio_min"] = TARGET_RATIO
        out["target_met"] = all(v >= TARGET_RATIO for v in out["ratio_vs_off"].values())
    out["machine"] = machine()
    out["errors"] = errors
    out["ok"] = not [e for e in errors if not e.startswith("postgresql: no")]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    report(lambda: run(args.renders, args.tasks, args.rounds))


if __name__ == "__main__":
    main()
