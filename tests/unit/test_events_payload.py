"""Custom data merging and method mapping, as the original's events.py does them."""

from __future__ import annotations

import json

from events.payload import merged_custom_data, methods_for, title


def node(name: str, custom: object) -> dict:
    return {"name": name, "custom_data": custom if isinstance(custom, str) else json.dumps(custom)}


def test_merge_in_document_order() -> None:
    payload = {
        "user": node(
            "jimmy", {"emails": ["a@x"], "events": {"JOB_DONE": {"methods": ["email"]}}, "-skip": 1}
        ),
        "job": node(
            "shot", {"emails": ["b@x"], "events": {"JOB_ERROR": {"methods": ["email"]}}, "level": 2}
        ),
        "pools": [node("/farm", {"level": 3}), node("/", "")],
    }
    notes: list[str] = []
    merged = merged_custom_data(payload, notes)
    assert merged["emails"] == ["a@x", "b@x"]  # lists concatenate
    assert set(merged["events"]) == {"JOB_DONE", "JOB_ERROR"}  # objects merge
    assert merged["level"] == 3 and "-skip" not in merged and notes == []


def test_bad_custom_data_is_noted_and_skipped() -> None:
    payload = {
        "user": node("u", {"emails": ["a@x"]}),
        "job": node("j", "{not json"),
        "render": node("r", "[1, 2]"),
    }
    notes: list[str] = []
    assert merged_custom_data(payload, notes) == {"emails": ["a@x"]}
    assert len(notes) == 2 and "not JSON" in notes[0] and "not a JSON object" in notes[1]


def test_methods_ordered_notify_send_others_email() -> None:
    merged = {
        "events": {
            "JOB_DONE": {"methods": ["email", "webhook", "notify-send"]},
            "JOB_ERROR": {"methods": "email"},
        }
    }
    notes: list[str] = []
    assert list(methods_for(merged, ["JOB_DONE", "JOB_ERROR"], notes)) == [
        "notify-send",
        "webhook",
        "email",
    ]
    assert notes == ["events.JOB_ERROR.methods is not a list: skipped"]
    assert title(["JOB_DONE", "RENDER_NO_TASK"]) == "Job Done, Render No Task"
