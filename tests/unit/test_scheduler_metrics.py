"""The scheduler's side of /metrics: a real Farm counted by state, pool and user, durations
in the broker's buckets, and the store's size on disk."""

from __future__ import annotations

from pathlib import Path

from broker.replytimes import REPLY_BUCKETS_MS
from workers.scheduler.farm import Farm, Registration
from workers.scheduler.metrics import (
    Histogram,
    Timings,
    job_state,
    render_state,
    snapshot,
    store_size,
)
from workers.scheduler.pools import Builtins
from workers.scheduler.renders import RenderFlag
from workers.scheduler.solver import Solver
from workers.scheduler.states import State

NOW = 1_000_000.0


def job(name: str, tasks: int) -> dict[str, object]:
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": tasks, "command": "echo @#@"}
    return {"name": name, "blocks": [block]}


def test_states_are_one_word_each_in_order_of_what_matters() -> None:
    assert render_state(0) == "offline"
    assert render_state(RenderFlag.WSL) == "asleep"
    assert render_state(RenderFlag.ONL) == "idle"
    assert render_state(RenderFlag.ONL | RenderFlag.RUN) == "busy"
    assert render_state(RenderFlag.ONL | RenderFlag.RUN | RenderFlag.PAU) == "paused"
    assert job_state(State.RDY | State.RUN) == "running"
    assert job_state(State.RUN | State.ERR) == "error"
    assert job_state(State.OFF | State.RUN) == "paused"
    assert job_state(State.DON) == "done"


def test_histogram_uses_the_reply_buckets_and_keeps_the_sum() -> None:
    h = Histogram()
    h.observe(0.0005)  # 0.5 ms: the first bucket
    h.observe(0.004)  # 4 ms: the 5 ms bucket
    h.observe(3600.0)  # beyond the last bound: the last bucket
    data = h.to_json()
    assert len(data["counts"]) == len(REPLY_BUCKETS_MS)
    assert data["counts"][0] == 1
    assert data["counts"][REPLY_BUCKETS_MS.index(5)] == 1
    assert data["counts"][-1] == 1
    assert abs(data["sum"] - 3600.0045) < 1e-6


def test_snapshot_counts_renders_jobs_and_tasks_of_a_running_farm() -> None:
    farm = Farm(Builtins(), NOW)
    farm.create_system_job(("postcmd", "wakeonlan", "events"), 2, 1800, 1000, NOW)
    for name in ("r1", "r2"):
        r = farm.register_render(name.encode(), Registration(name=name, os="unix linux 64"), NOW)
        r.host_resources = {"mem_free_mb": 8000, "hdd_free_gb": 100, "cpu_num": 8, "cpu_mhz": 3000}
    farm.add_job(job("a", 3), "ann", "ws", NOW)
    farm.add_job(job("b", 2), "bob", "ws", NOW)
    started = Solver(farm).solve(NOW)
    assert started  # some tasks run on the renders now

    shot = snapshot(farm, Timings(), 123)
    renders = {(state, pool): n for state, pool, n in shot["renders"]}
    assert renders == {("busy", "/"): 2}
    jobs = {(state, user): n for state, user, n in shot["jobs"]}
    assert jobs[("running", "ann")] + jobs.get(("running", "bob"), 0) >= 1
    assert sum(n for (_, user), n in jobs.items() if user in ("ann", "bob")) == 2
    assert shot["tasks"]["running"] == len(started)
    assert shot["tasks"]["ready"] == 5 - len(started)
    assert [q["name"] for q in shot["system"]] == [b.name for b in farm.sysjob.job.blocks]  # type: ignore[union-attr]
    assert set(shot["system_ended"]) == {q["name"] for q in shot["system"]}
    assert set(shot["timings"]) == {"solve", "commit", "dispatch"}
    assert shot["store_bytes"] == 123
    assert shot["counters"]["jobs_submitted"] == 2


def test_store_size_adds_the_database_and_its_wal(tmp_path: Path) -> None:
    (tmp_path / "farm.sqlite").write_bytes(b"x" * 100)
    (tmp_path / "farm.sqlite-wal").write_bytes(b"x" * 20)
    (tmp_path / "other.txt").write_bytes(b"x" * 7)
    assert store_size(str(tmp_path), "farm.sqlite") == 120
    assert store_size("", "farm.sqlite") == 0
    assert store_size(str(tmp_path / "none"), "farm.sqlite") == 0
