"""The original's web page as a monitor through the gateway: it registers over HTTP POST
the way its page does, polls events, and sees a job's changes (recorded shapes in
tests/fixtures/original/monitor)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.client import send
from gateway.framing import Framing
from tests.conftest import free_port, load_slack, wait_for

pytestmark = pytest.mark.integration

SHAPES = Path(__file__).parent.parent / "fixtures" / "original" / "monitor"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((SHAPES / f"{name}.json").read_text())


def with_id(obj: Any, page_id: int) -> Any:
    text = json.dumps(obj).replace('"<the id registered>"', str(page_id))
    return json.loads(text)


def test_the_page_registers_and_sees_a_jobs_changes(make_farm: Any) -> None:
    port = free_port()
    farm = make_farm(af_gateway_port=port)
    farm.start_server()
    farm.start_render("gw-render-0")
    wait_for(lambda: "gw-render-0" in farm.online(), 30, "the render online")
    wait_for(lambda: "users" in send(port, {"get": {"type": "users"}}), 15, "the gateway to serve")

    def page(obj: Any) -> Any:
        return send(port, obj, Framing.HTTP)

    register = fixture("register")
    reply = page(register["request"])
    for key, fields in register["reply_keys"].items():
        assert set(fields) <= set(reply[key]), reply
    page_id = reply["monitor"]["id"]
    assert page_id > 0
    assert page(with_id(fixture("subscribe")["request"], page_id)) == fixture("subscribe")["reply"]
    unknown = fixture("unknown")
    assert page(unknown["request"]) == unknown["reply"]
    poll = with_id(fixture("events")["request"], page_id)
    page(poll)  # what happened before

    job = {
        "job": {
            "name": "watched",
            "user_name": "jim",
            "host_name": "ws1",
            "blocks": [{"name": "b", "tasks": [{"name": "t", "command": "sleep 1"}]}],
        }
    }
    job_id = send(port, job)["id"]
    submitted = time.monotonic()
    seen: dict[str, Any] = {}

    def polled(key: str) -> bool:
        """Poll once, keep what came; whether the job is in the events of `key` so far."""
        for kind, values in page(poll)["events"].items():
            seen.setdefault(kind, []).extend(values)
        return job_id in seen.get(key, [])

    wait_for(lambda: polled("jobs_change"), 10, "the job's change in the page's events")
    elapsed = time.monotonic() - submitted
    assert elapsed < 1.0 * load_slack(), f"the change came {elapsed:.2f} s after the submission"
    wait_for(
        lambda: (
            polled("jobs_change")
            and any(p["job_id"] == job_id for p in seen.get("tasks_progress", []))
        ),
        30,
        "its task's progress",
    )
    allowed = set(fixture("events")["reply_keys"]["events"])
    assert set(seen) <= allowed, seen
    progress = next(p for p in seen["tasks_progress"] if p["job_id"] == job_id)
    assert set(fixture("events")["tasks_progress_keys"]) == set(progress)
    assert {"state", "str"} <= set(progress["progress"][0])
    delete = {"type": "jobs", "ids": [job_id], "user_name": "jim", "operation": {"type": "delete"}}
    assert send(port, {"action": delete})["info"]["kind"] == "log"
    seen.clear()
    wait_for(lambda: polled("jobs_del"), 10, "the job's deletion in the page's events")
    listed = page({"get": {"type": "monitors"}})["monitors"]
    assert [m["id"] for m in listed] == [page_id]
    assert "Traceback" not in farm.log("afserver")
