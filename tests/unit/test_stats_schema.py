from __future__ import annotations

from stats import schema


def test_columns_are_the_originals() -> None:
    assert schema.columns("jobs") == [
        "annotation", "blockname", "capacity", "description", "folder", "jobname", "hostname", "service",
        "tasks_done", "tasks_quantity", "run_time_sum", "time_done", "time_started", "username", "serial", "id_block",
    ]  # fmt: skip
    assert schema.columns("tasks")[-3:] == ["serial", "id_block", "id_task"]
    assert "command character varying(4096)" in schema.create_sql("tasks")
    assert "capacity integer DEFAULT 0" in schema.create_sql("jobs")


def test_rows_are_fitted_to_their_columns() -> None:
    row = schema.fit("tasks", {"command": "x" * 5000, "jobname": "j", "error": 1})
    names = schema.columns("tasks")
    assert len(row[names.index("command")]) == 4096
    assert row[names.index("jobname")] == "j" and row[names.index("errors_count")] == 0
    assert row[names.index("hostname")] is None
