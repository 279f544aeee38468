"""The farm's JSON API on a real afserver with a real render: submit, read, act, and bad
input answered with a JSON error and a 4xx status while nothing changes."""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from starlette.routing import Route

from tests.conftest import Farm, wait_for
from tests.conftest import web_call as call
from web import openapi
from web.app import create_app
from web.farm_api import Farm as FarmApi
from web.live import LiveFeed

pytestmark = pytest.mark.integration


@pytest.fixture
def web_farm(make_web_farm) -> Farm:  # type: ignore[no-untyped-def]
    farm = make_web_farm("r1", af_admins=["wrangler"])
    wait_for(lambda: call(farm, "GET", "/api/farm/users")[0] == 200, 15, "the web API serving")
    return farm


ADMIN = {"X-Afanasy-User": "wrangler", "X-Afanasy-Admin": "1"}  # an af_admins user asking
JOB = {
    "name": "webjob",
    "blocks": [
        {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 4, "command": "echo frame @#@"}
    ],
}


def test_submit_read_and_act(web_farm: Farm) -> None:
    farm = web_farm
    status, reply = call(farm, "POST", "/api/farm/jobs", {"job": JOB}, **{"X-Afanasy-User": "ann"})
    assert status == 200, reply
    job_id = reply["id"]
    # a retry with the same Idempotency-Key gets the first job back, not a second
    key = {"X-Afanasy-User": "ann", "Idempotency-Key": "web-1"}
    status, first = call(farm, "POST", "/api/farm/jobs", {"job": {**JOB, "name": "keyed"}}, **key)
    status, again = call(farm, "POST", "/api/farm/jobs", {"job": {**JOB, "name": "keyed"}}, **key)
    assert status == 200 and again["id"] == first["id"] and again["repeated"] is True
    call(
        farm,
        "POST",
        "/api/farm/jobs/action",
        {"ids": [first["id"]], "operation": {"type": "delete"}},
        **{"X-Afanasy-User": "ann"},
    )
    status, jobs = call(farm, "GET", "/api/farm/jobs?user=ann")
    wait_for(
        lambda: (
            [j["name"] for j in call(farm, "GET", "/api/farm/jobs?user=ann")[1]["jobs"]]
            == ["webjob"]
        ),
        10,
        "the keyed job deleted",
    )
    status, jobs = call(farm, "GET", "/api/farm/jobs?user=ann")
    assert [j["name"] for j in jobs["jobs"]] == ["webjob"]
    assert jobs["jobs"][0]["user_name"] == "ann"
    wait_for(
        lambda: call(farm, "GET", f"/api/farm/jobs/{job_id}")[1]["tasks_done"] == 4, 20, "job done"
    )
    status, job = call(farm, "GET", f"/api/farm/jobs/{job_id}")
    assert status == 200 and job["blocks"][0]["name"] == "b"
    status, tasks = call(farm, "GET", f"/api/farm/jobs/{job_id}/tasks")
    assert [t["state"] for t in tasks["tasks"]] == ["DON"] * 4
    status, out = call(farm, "GET", f"/api/farm/jobs/{job_id}/blocks/0/tasks/2/output")
    assert status == 200 and "frame 3" in out["tasks"][0]["output"]
    assert f"monitor on {farm.web}/monitor/jobs" in farm.log("afserver")  # said at start
    status, stat = call(farm, "GET", "/api/farm/stat")  # the store's state, for the web
    assert status == 200 and stat["scheduler"]["store"]["state"] == "ok", stat
    status, renders = call(farm, "GET", "/api/farm/renders")
    assert "r1" in {r["name"] for r in renders["renders"]}

    pause = {"ids": [job_id], "operation": {"type": "pause"}}
    status, reply = call(farm, "POST", "/api/farm/jobs/action", pause, **{"X-Afanasy-User": "bob"})
    assert status == 403 and "admin" in reply["error"]  # not bob's job
    status, reply = call(farm, "POST", "/api/farm/jobs/action", pause, **{"X-Afanasy-User": "ann"})
    assert status == 200, reply
    assert "OFF" in call(farm, "GET", f"/api/farm/jobs/{job_id}")[1]["state"]
    nimby = {"names": ["r1"], "params": {"NIMBY": True}}
    status, reply = call(farm, "POST", "/api/farm/renders/action", nimby)
    assert status == 403  # renders need the admin role
    status, reply = call(farm, "POST", "/api/farm/renders/action", nimby, **ADMIN)
    assert status == 200, reply
    r1 = next(r for r in call(farm, "GET", "/api/farm/renders")[1]["renders"] if r["name"] == "r1")
    assert "NBY" in r1["state"]


def test_bad_input_is_a_json_4xx_and_changes_nothing(web_farm: Farm) -> None:
    farm = web_farm
    status, reply = call(farm, "POST", "/api/farm/jobs", {"job": JOB})
    job_id = reply["id"]
    before = call(farm, "GET", f"/api/farm/jobs/{job_id}")[1]
    bad = [
        ("GET", "/api/farm/jobs/999999", None, 404),
        ("GET", "/api/farm/jobs/abc", None, 400),
        ("GET", f"/api/farm/jobs/{job_id}/blocks/7/tasks/0/output", None, 404),
        ("GET", "/api/farm/renders?mode=everything", None, 400),
        ("POST", "/api/farm/jobs", {"job": {"name": "x", "blocks": "none"}}, 400),
        ("POST", "/api/farm/jobs", b"{not json", 400),
        ("POST", "/api/farm/jobs", {"job": JOB, "extra": 1}, 400),
        ("POST", "/api/farm/cats/action", {"ids": [1]}, 404),
        ("POST", "/api/farm/jobs/action", {"ids": "all", "operation": {"type": "pause"}}, 400),
        ("POST", "/api/farm/jobs/action", {"ids": [job_id], "operation": {"type": "explode"}}, 400),
        ("POST", "/api/farm/jobs/action", {"ids": [job_id], "params": {"priority": "high"}}, 400),
        ("POST", "/api/farm/jobs/action", [1, 2], 400),
        ("POST", "/api/farm/jobs/action", {"ids": [1], "operation": {"type": "pause"}}, 403),
        ("GET", "/api/farm/system", None, 403),
    ]
    for method, path, body, want in bad:
        status, reply = call(farm, method, path, body)
        assert status == want and reply["error"], (method, path, status, reply)
    after = call(farm, "GET", f"/api/farm/jobs/{job_id}")[1]
    assert after["priority"] == before["priority"] and "OFF" not in after["state"]
    assert len(call(farm, "GET", "/api/farm/jobs")[1]["jobs"]) == 2  # the job and the system job
    status, system = call(farm, "GET", "/api/farm/system", **ADMIN)
    assert status == 200 and system["name"] == "afanasy" and "system" in system


class EventStream:
    """The farm's Server-Sent Events read on a thread, as a browser's EventSource would."""

    def __init__(self, url: str) -> None:
        self.events: list[tuple[str, Any]] = []
        self.resp = urllib.request.urlopen(url, timeout=30)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        kind, data = "message", ""
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed under it
            for raw in self.resp:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif not line and data:
                    self.events.append((kind, json.loads(data)))
                    kind, data = "message", ""

    def task_states(self, job_id: int) -> list[str]:
        """States of the job's tasks as the pushes told them, in order."""
        return [
            t["state"]
            for kind, body in self.events
            if kind == "farm"
            for group in body.get("tasks", [])
            if group["job_id"] == job_id
            for t in group["tasks"]
        ]

    def close(self) -> None:
        self.resp.close()


def test_live_events_tell_what_changed(web_farm: Farm) -> None:
    farm = web_farm
    stream = EventStream(f"{farm.web}/api/farm/events")
    try:
        wait_for(lambda: any(k == "hello" for k, _ in stream.events), 10, "the stream's hello")
        wait_for(
            lambda: farm.log("afserver").count("monitor 1 of web") > 0, 10, "monitor registered"
        )
        job = {**JOB, "blocks": [{**JOB["blocks"][0], "command": "sleep 0.3; echo @#@"}]}
        job_id = call(farm, "POST", "/api/farm/jobs", {"job": job})[1]["id"]
        wait_for(lambda: stream.task_states(job_id).count("DON") == 4, 30, "four DON pushes")
        states = stream.task_states(job_id)
        assert any("RUN" in s for s in states), states
        assert states.index(next(s for s in states if "RUN" in s)) < states.index("DON")
        jobs = [j for k, b in stream.events if k == "farm" for j in b.get("jobs", [])]
        assert any(j["id"] == job_id and j["name"] == "webjob" for j in jobs)
        assert jobs[-1]["tasks_done"] == 4 or any(j["tasks_done"] == 4 for j in jobs)
        call(
            farm,
            "POST",
            "/api/farm/jobs/action",
            {"ids": [job_id], "operation": {"type": "delete"}},
        )
        wait_for(
            lambda: any(
                job_id in b.get("jobs_deleted", []) for k, b in stream.events if k == "farm"
            ),
            10,
            "the deletion pushed",
        )

        r1 = next(
            r for r in call(farm, "GET", "/api/farm/renders")[1]["renders"] if r["name"] == "r1"
        )

        def r1_resources() -> bool:
            pushed = [p for k, b in stream.events if k == "farm" for p in b.get("resources", [])]
            return any(i == r1["id"] and res.get("cpu_num", 0) > 0 for i, res in pushed)

        wait_for(r1_resources, 12, "the renders' resources pushed (every 5 s)")
    finally:
        stream.close()


def test_the_openapi_document_names_every_route() -> None:
    endpoint = "tcp://127.0.0.1:9"
    app = create_app(None, lambda _: None, FarmApi(endpoint, 1.0), LiveFeed(endpoint))
    served = {
        (method.lower(), route.path)
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/api/")
        for method in (route.methods or ()) - {"HEAD"}
    }
    doc = openapi.document()
    described = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served == described
    assert doc["openapi"].startswith("3.")
