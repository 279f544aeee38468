"""A render's resource ring: one sample per step, the oldest dropped, bytes that read back."""

from __future__ import annotations

import sys

from workers.scheduler import history
from workers.scheduler.history import SLOTS, STEP_SEC, History

NOW = 1_000_000.0


def res(cpu_idle: float, net: float = 0.0, gpu: float = 0.0) -> dict[str, float]:
    return {
        "cpu_idle": cpu_idle,
        "mem_total_mb": 1000, "mem_free_mb": 250,
        "swap_total_mb": 200, "swap_used_mb": 20,
        "hdd_total_gb": 100, "hdd_free_gb": 90,
        "net_recv_kbsec": net, "net_send_kbsec": 0, "gpu_gpu_util": gpu,
    }  # fmt: skip


def test_one_sample_per_step_and_the_oldest_go() -> None:
    ring = History()
    assert ring.add(res(90), NOW)
    assert not ring.add(res(10), NOW + STEP_SEC / 2)  # too soon: not taken
    for k in range(1, SLOTS + 5):
        assert ring.add(res(100 - k % 100, net=1000 * k, gpu=k % 100), NOW + k * STEP_SEC)
    out = ring.to_json()
    assert out["count"] == SLOTS and out["t"] == NOW + (SLOTS + 4) * STEP_SEC
    assert out["cpu"][-1] == (SLOTS + 4) % 100 and out["cpu"][0] == 5  # the first 5 dropped
    assert out["mem"] == [75.0] * SLOTS and out["swap"] == [10.0] * SLOTS
    assert out["hdd"] == [10.0] * SLOTS
    newest = 1000 * (SLOTS + 4)
    assert abs(out["net"][-1] - newest) / newest < 0.05  # log scale: within 5 %
    assert out["gpu"][-1] == (SLOTS + 4) % 100


def test_a_ring_is_small_and_bad_values_do_not_break_it() -> None:
    ring = History()
    ring.add({"cpu_idle": "busy", "mem_total_mb": 0, "net_recv_kbsec": -5}, NOW)
    assert ring.to_json()["cpu"] == [0.0] and ring.to_json()["net"] == [0.0]
    size = sys.getsizeof(ring) + sys.getsizeof(ring.samples)
    assert size < 600, size  # x 10,000 renders: under 6 MB
    assert len(ring.samples) == SLOTS * len(history.SERIES)
