"""Event payloads and the merge of custom data (pure functions).

A job event carries {"user", "job", "events"}; a render event carries {"render",
"host_resources", "pools" (own to root), "user" (afadmin), "job" (the system job), "events"}.
An event is only emitted when someone asked for events: non-empty custom data on the job or
its user (job events), or on the render, the system job, afadmin or any pool above it.

The events service merges the custom data of every top-level value in document order
(list elements one by one): objects merge recursively, lists concatenate, other values
overwrite, keys starting with "-" are ignored. Custom data that is not a JSON object is
skipped with a note, so it never stops the other events.
"""

from __future__ import annotations

import json
from typing import Any

METHOD_ORDER_FIRST = ("notify-send",)
METHOD_ORDER_LAST = ("email",)


def has_custom(*values: str) -> bool:
    return any(v.strip() for v in values if isinstance(v, str))


def job_payload(job: dict[str, Any], user: dict[str, Any], events: list[str]) -> dict[str, Any]:
    return {"user": user, "job": job, "events": list(events)}


def render_payload(
    render: dict[str, Any],
    pools: list[dict[str, Any]],
    user: dict[str, Any],
    system_job: dict[str, Any],
    events: list[str],
) -> dict[str, Any]:
    return {
        "render": render,
        "host_resources": render.get("host_resources", {}),
        "pools": pools,
        "user": user,
        "job": system_job,
        "events": list(events),
    }


def merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if key.startswith("-"):
            continue
        old = into.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merge(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            into[key] = old + value
        else:
            into[key] = value


def merged_custom_data(payload: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """All custom data of the payload's top-level values merged, in document order."""
    merged: dict[str, Any] = {}
    for key, value in payload.items():
        for node in value if isinstance(value, list) else [value]:
            if not isinstance(node, dict):
                continue
            text = node.get("custom_data")
            if not isinstance(text, str) or not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                notes.append(
                    f"custom data of {key} {node.get('name', '')!r} is not JSON ({exc}): skipped"
                )
                continue
            if not isinstance(data, dict):
                notes.append(
                    f"custom data of {key} {node.get('name', '')!r} is not a JSON object: skipped"
                )
                continue
            merge(merged, data)
    return merged


def methods_for(
    merged: dict[str, Any], events: list[str], notes: list[str]
) -> dict[str, list[str]]:
    """method -> the events that asked for it, ordered notify-send, others, email."""
    wanted: dict[str, list[str]] = {}
    table = merged.get("events")
    if not isinstance(table, dict):
        return wanted
    for event in events:
        entry = table.get(event)
        if entry is None:
            continue
        methods = entry.get("methods") if isinstance(entry, dict) else None
        if not isinstance(methods, list):
            notes.append(f"events.{event}.methods is not a list: skipped")
            continue
        for method in methods:
            if isinstance(method, str) and method:
                wanted.setdefault(method, []).append(event)
    first = [m for m in METHOD_ORDER_FIRST if m in wanted]
    last = [m for m in METHOD_ORDER_LAST if m in wanted]
    middle = [m for m in wanted if m not in first and m not in last]
    return {m: wanted[m] for m in first + middle + last}


def title(events: list[str]) -> str:
    """JOB_DONE, JOB_ERROR -> "Job Done, Job Error"."""
    return ", ".join(e.replace("_", " ").title() for e in events)


def list_of_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []
