"""/metrics on the web port: a real afserver and render run tasks, Prometheus scrapes twice."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Farm, free_port, submit, wait_for

pytestmark = pytest.mark.integration

FAMILIES = {
    "afanasy_renders",
    "afanasy_tasks",
    "afanasy_jobs",
    "afanasy_dispatch_seconds",
    "afanasy_heartbeat_reply_seconds",
    "afanasy_solve_seconds",
    "afanasy_commit_seconds",
    "afanasy_broker_messages",
    "afanasy_system_queue",
    "afanasy_system_commands",
    "afanasy_scheduler_events",
    "afanasy_store_bytes",
    "afanasy_process_cpu_seconds",
    "afanasy_process_resident_bytes",
    "process_cpu_seconds",  # the web process's own (prometheus_client's ProcessCollector)
}


def scrape(farm: Farm) -> dict[str, Any]:
    """Every sample of one scrape, by name and labels, parsed as Prometheus would."""
    with urllib.request.urlopen(f"{farm.web}/metrics", timeout=10) as resp:  # type: ignore[attr-defined]
        assert resp.headers["content-type"].startswith("text/plain")
        text = resp.read().decode()
    samples: dict[str, Any] = {"families": set()}
    for family in text_string_to_metric_families(text):
        samples["families"].add(family.name)
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict[str, Any], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_change_as_tasks_run(make_web_farm) -> None:  # type: ignore[no-untyped-def]
    farm = make_web_farm("r1")
    before = scrape(farm)
    assert before["families"] >= FAMILIES, FAMILIES - before["families"]
    assert value(before, "afanasy_renders", state="idle", pool="/") >= 1
    assert value(before, "afanasy_tasks", state="done") == 0
    job = {
        "name": "metered",
        "blocks": [
            {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 3, "command": "echo @#@"}
        ],
    }
    job_id = submit(farm, job)
    wait_for(lambda: farm.job(job_id)["state"].startswith("DON"), 60, "the job done")

    def after_run() -> dict[str, Any] | None:
        now = scrape(farm)  # the reading is at most a second old
        return now if value(now, "afanasy_tasks", state="done") >= 3 else None

    after = wait_for(after_run, 10, "the scrape shows the done tasks")
    user = farm.job(job_id)["user_name"]
    assert value(after, "afanasy_jobs", state="done", user=user) >= 1
    for name in ("afanasy_dispatch_seconds_count", "afanasy_solve_seconds_count",
                 "afanasy_commit_seconds_count", "afanasy_heartbeat_reply_seconds_count"):  # fmt: skip
        assert value(after, name) > value(before, name), name
    key = ("afanasy_broker_messages_total", "type", "in")
    grown = [
        k for k in after if isinstance(k, tuple) and k[0] == key[0]
        and dict(k[1]).get("direction") == "in" and after[k] > before.get(k, 0)
    ]  # fmt: skip
    assert grown, "no broker message count grew"
    assert value(after, "afanasy_store_bytes") > 0


def test_metrics_need_a_token_with_auth(make_curve_farm) -> None:  # type: ignore[no-untyped-def]
    """With af_auth, scraping is for token holders, as the farm API's reads."""
    port = free_port()
    farm = make_curve_farm(af_web_port=port)
    url = f"http://127.0.0.1:{port}/metrics"

    def status(headers: dict[str, str]) -> int:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10):
                return 200
        except urllib.error.HTTPError as exc:
            return exc.code

    wait_for(lambda: status({}) == 401, 20, "/metrics refusing a scrape without a token")
    made = farm.afcmd("token", "prometheus")
    assert made.returncode == 0, made.stderr
    assert status({"Authorization": f"Bearer {made.stdout.strip()}"}) == 200
