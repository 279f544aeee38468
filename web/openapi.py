"""The machine-readable description of the web API (OpenAPI 3.1), built from one table so
that it names every route the web process serves (a test holds the two together)."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}
STATS_QUERY = ["from", "to", "group", "depth"]
LOG_FILTERS = ["subject", "type", "object", "info"]

# method, path, summary, query parameters, request body (JSON object) or None
OPERATIONS: list[tuple[str, str, str, list[str], str | None]] = [
    ("get", "/api/farm/jobs", "Jobs with state and progress", ["user"], None),
    (
        "get",
        "/api/farm/stat",
        "The scheduler's counters and its store's state (scheduler.store.state: ok or "
        "degraded, with the reason)",
        [],
        None,
    ),
    (
        "post",
        "/api/farm/jobs",
        "Submit a job: {job: {...}} with the original's job keys; a retry with the same "
        "Idempotency-Key header gets the first job back",
        [],
        "job",
    ),
    ("get", "/api/farm/jobs/{job_id}", "A job with its blocks, parameters and log", [], None),
    ("get", "/api/farm/jobs/{job_id}/why", "Why the job's tasks are not running", [], None),
    ("get", "/api/farm/jobs/{job_id}/tasks", "The job's tasks and their states", ["block", "limit"], None),
    ("get", "/api/farm/jobs/{job_id}/blocks/{block}/tasks/{task}/output",
     "A task's output (the last start, or attempt=N)", ["attempt"], None),
    ("get", "/api/farm/jobs/{job_id}/blocks/{block}/tasks/{task}/log", "A task's log", [], None),
    ("get", "/api/farm/renders",
     "Renders with state and resources; mode=table: the monitor table's few fields; "
     "mode=history&name=r1,r2: their last 10 minutes of resources (60 samples, oldest first)",
     ["mode", "name"], None),
    ("get", "/api/farm/pools", "Pools with their parameters and counters", [], None),
    ("get", "/api/farm/users", "Users", [], None),
    ("get", "/api/farm/system", "The system job with its queues (admin)", [], None),
    ("get", "/api/farm/events", "Server-Sent Events: what changes on the farm, as it changes",
     [], None),
    ("post", "/api/farm/{kind}/action",
     "An operation or parameters on jobs (blocks, tasks), renders, pools or users: "
     "{ids|names|mask, block_ids?, operation?: {type, task_ids?, mode?, name?, count?}, "
     "params?: {...}}", [], "action"),
    ("get", "/api/stats/jobs", "Deleted jobs' blocks grouped", STATS_QUERY, None),
    ("get", "/api/stats/tasks", "Finished task runs grouped", STATS_QUERY, None),
    ("get", "/api/stats/graph", "Task runs per time bucket and group", STATS_QUERY, None),
    ("get", "/api/stats/logs", "Log rows, newest first", ["from", "to", *LOG_FILTERS], None),
    ("post", "/api/stats/delete",
     "Delete a folder's records or records before a date: {folder|before, confirm: true}",
     [], "delete"),
    ("get", "/api/openapi.json", "This document", [], None),
]  # fmt: skip


def _path_params(path: str) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
    ]


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, query, body in OPERATIONS:
        op: dict[str, Any] = {
            "summary": summary,
            "parameters": _path_params(path)
            + [{"name": q, "in": "query", "schema": {"type": "string"}} for q in query],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {}}},
                "400": {"description": "Bad input", "content": {"application/json": {"schema": ERROR}}},
                "403": {"description": "Not allowed", "content": {"application/json": {"schema": ERROR}}},
                "404": {"description": "Unknown", "content": {"application/json": {"schema": ERROR}}},
                "413": {"description": "Body over the limit", "content": {"application/json": {"schema": ERROR}}},
            },
        }  # fmt: skip
        if body:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Afanasy web API",
            "version": "1",
            "description": "A POST needs Content-Type: application/json and, from a browser, "
            "the web's own origin (or one of af_web_trusted_origins). With af_auth: "
            "Authorization: Bearer <token>; ?token= only on /api/farm/events.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "string"},
                        "page": {
                            "type": "string",
                            "description": "for a refusal: what to do on the monitor page",
                        },
                    },
                    "required": ["error"],
                }
            }
        },
    }
