from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from workers.scheduler.store import FILE_NAME, SCHEMA_VERSION, Store, StoreError


def test_round_trip_and_upsert(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save("renders", [{"id": 1, "name": "a", "x": 1}, {"id": 2, "name": "b"}])
    store.save("renders", [{"id": 1, "name": "a", "x": 2}])
    store.close()
    again = Store(tmp_path)
    assert again.load("renders") == [{"id": 1, "name": "a", "x": 2}, {"id": 2, "name": "b"}]
    again.delete("renders", [1])
    assert [r["id"] for r in again.load("renders")] == [2]


def test_corrupt_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    garbage = b"this is not a database" * 100
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match="left untouched") as err:
        Store(tmp_path)
    assert str(path) in str(err.value)
    assert path.read_bytes() == garbage


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / FILE_NAME)
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer than this server"):
        Store(tmp_path)


def test_failed_transaction_changes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save("renders", [{"id": 1, "name": "a"}])
    with pytest.raises(sqlite3.IntegrityError):
        store.save("renders", [{"id": 2, "name": "b"}, {"id": 3, "name": "a"}])  # duplicate name
    assert [r["name"] for r in store.load("renders")] == ["a"]
