"""afcmd stat's summary: what a wrangler reads at a glance, from the server's counters."""

from __future__ import annotations

from afcmd.show import stat_summary

BROKER = {
    "uptime_sec": 3725.0,
    "workers": {"scheduler": 1},
    "queued": {"scheduler": 0},
    "connections_accepted": 12,
    "reply_ms": {"RENDER_UPDATE": {"n": 1234, "p50": 1, "p99": 5}, "REQUEST": {"n": 0}},
    "errors": {"BAD_MESSAGE": 3, "TOO_LARGE": 0},
}
SCHEDULER = {
    "renders_total": 4,
    "renders_online": 3,
    "renders_busy": 1,
    "jobs_total": 12,
    "tasks_running": 5,
    "users_total": 3,
    "pools_total": 2,
    "store": {"state": "ok"},
}


def test_the_summary_says_uptime_farm_store_replies_and_errors() -> None:
    text = stat_summary(BROKER, SCHEDULER)
    lines = text.splitlines()
    assert lines[0].startswith("server") and "up 1 h 2 min" in lines[0]
    assert "workers: scheduler 1" in lines[0] and "connections accepted: 12" in lines[0]
    assert "renders 3 online of 4 (1 busy), jobs 12, tasks running 5" in lines[1]
    assert lines[2].split() == ["store", "ok"]
    assert "RENDER_UPDATE n=1234 p50≤1 ms p99≤5 ms" in lines[3] and "REQUEST" not in lines[3]
    assert lines[4].split(None, 1) == ["errors", "BAD_MESSAGE 3"]
    assert "--json" in lines[-1]


def test_a_degraded_store_stands_out() -> None:
    store = {"state": "degraded", "seconds": 12.5, "error": "store full: no space left"}
    text = stat_summary(BROKER, {**SCHEDULER, "store": store})
    assert "store    DEGRADED for 12.5 s: store full: no space left" in text
