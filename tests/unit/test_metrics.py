"""web/metrics.py's pure parts: families from the two replies, the one-second cache."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from web.metrics import CACHE_SEC, FarmCollector, buckets
from workers.scheduler.metrics import Histogram

ROOT = Path(__file__).resolve().parents[2]
SCHEDULER: dict[str, Any] = {
    "renders": [["busy", "/", 2], ["offline", "/gpu", 1]],
    "jobs": [["running", "ann", 1]],
    "jobs_cold": 4,
    "tasks": {"ready": 3, "running": 2, "done": 5},
    "timings": {k: Histogram().to_json() for k in ("solve", "commit", "dispatch")},
    "system": [{"name": "post_commands", "queued": 7, "live_tasks": 1}],
    "system_ended": {"post_commands": {"done": 9, "failed": 1}},
    "counters": {"jobs_submitted": 3},
    "store_bytes": 4096,
    "processes": [{"name": "broker", "cpu_seconds": 1.5, "rss_bytes": 1000}],
}
BROKER: dict[str, Any] = {
    "uptime_sec": 10.0,
    "messages": {"RENDER_UPDATE": {"in": 5, "out": 5, "dropped": 0}},
    "reply_ms": {"RENDER_UPDATE": {"counts": [3, 1] + [0] * 21}},
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def render(scheduler: dict[str, Any], broker: dict[str, Any]) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FarmCollector(lambda: (scheduler, broker)))
    return generate_latest(registry).decode()


def test_families_carry_the_replies_figures() -> None:
    got = samples(render(SCHEDULER, BROKER))
    assert got[("afanasy_renders", (("pool", "/"), ("state", "busy")))] == 2
    assert got[("afanasy_tasks", (("state", "done"),))] == 5
    assert got[("afanasy_jobs", (("state", "running"), ("user", "ann")))] == 1
    assert got[("afanasy_system_queue", (("block", "post_commands"),))] == 7
    ended = ("afanasy_system_commands_total", (("block", "post_commands"), ("result", "failed")))
    assert got[ended] == 1
    assert got[("afanasy_heartbeat_reply_seconds_count", ())] == 4
    assert got[("afanasy_heartbeat_reply_seconds_bucket", (("le", "0.001"),))] == 3
    assert got[("afanasy_store_bytes", ())] == 4096
    assert (
        got[("afanasy_broker_messages_total", (("direction", "in"), ("type", "RENDER_UPDATE")))]
        == 5
    )


def test_buckets_are_cumulative_seconds_ending_in_inf() -> None:
    out = buckets([1, 2, 0] + [4] * 20)
    assert out[0] == ("0.001", 1.0) and out[1] == ("0.002", 3.0)
    assert out[-1] == ("+Inf", 83.0)


def test_a_broker_without_heartbeats_yet_gives_that_family_as_zeros() -> None:
    """A family that comes and goes breaks dashboards and rate(): it is there from the first
    scrape, with nothing counted."""
    families = {f.name: f for f in text_string_to_metric_families(render(SCHEDULER, {}))}
    heartbeats = families["afanasy_heartbeat_reply_seconds"]
    assert {s.value for s in heartbeats.samples if s.name.endswith("_count")} == {0.0}
    assert "afanasy_renders" in families


def test_scrapes_within_a_second_share_one_reading() -> None:
    now = [100.0]
    reads: list[int] = []
    collector = FarmCollector(lambda: (reads.append(1), (SCHEDULER, BROKER))[1], lambda: now[0])
    for _ in range(5):
        list(collector.collect())
    assert len(reads) == 1
    now[0] += CACHE_SEC
    list(collector.collect())
    assert len(reads) == 2


def test_the_grafana_dashboard_names_only_metrics_that_exist() -> None:
    """packaging/grafana-afanasy.json cannot drift from the names /metrics gives."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FarmCollector(lambda: (SCHEDULER, BROKER)))
    ProcessCollector(registry=registry)
    given = {name for name, _labels in samples(generate_latest(registry).decode())}
    dashboard = json.loads((ROOT / "packaging" / "grafana-afanasy.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    used = {name for e in exprs for name in re.findall(r"\b(?:afanasy|process)_\w+", e)}
    assert used, "no metric in the dashboard"
    assert used <= given, sorted(used - given)
