"""A render's recent resources, for the monitor's graphs: a small fixed ring per render.

Heartbeats bring a render's resources every few seconds; the scheduler keeps one sample per
STEP_SEC in a ring of SLOTS, one byte per series: percents as they are, the network as a
log scale (8 steps per doubling, up to 2^31 KB/s). One ring is a bytearray of
SLOTS x len(SERIES) = 360 bytes plus the objects around it: about 0.5 KB a render, 5 MB
at 10,000 renders, whatever the uptime. Nothing is stored: a restart starts the rings anew.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SLOTS = 60  # samples kept per render...
STEP_SEC = 10.0  # ...one at most this often: the last 10 minutes
SERIES = ("cpu", "mem", "swap", "hdd", "net", "gpu")
_NET = SERIES.index("net")


def _percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else 0.0


def sample(res: dict[str, Any]) -> tuple[float, ...]:
    """One sample of host_resources, in SERIES order (net in KB/s, the rest in percent)."""

    def num(key: str) -> float:
        value = res.get(key, 0)
        return float(value) if isinstance(value, (int, float)) else 0.0

    return (
        100.0 - num("cpu_idle") if isinstance(res.get("cpu_idle"), (int, float)) else 0.0,
        _percent(num("mem_total_mb") - num("mem_free_mb"), num("mem_total_mb")),
        _percent(num("swap_used_mb"), num("swap_total_mb")),
        _percent(num("hdd_total_gb") - num("hdd_free_gb"), num("hdd_total_gb")),
        num("net_recv_kbsec") + num("net_send_kbsec"),
        num("gpu_gpu_util"),
    )


def _byte(i: int, value: float) -> int:
    if i == _NET:
        return min(255, round(8 * math.log2(1 + max(0.0, value))))
    return min(100, max(0, round(value)))


def _value(i: int, byte: int) -> float:
    return round(2 ** (byte / 8) - 1, 1) if i == _NET else float(byte)


@dataclass(slots=True)
class History:
    samples: bytearray = field(default_factory=lambda: bytearray(SLOTS * len(SERIES)))
    count: int = 0  # samples taken; the newest is at (count - 1) % SLOTS
    last: float = 0.0  # when the newest was taken

    def add(self, res: dict[str, Any], now: float) -> bool:
        """Take a sample, unless the last one is younger than STEP_SEC."""
        if self.count and now - self.last < STEP_SEC:
            return False
        at = (self.count % SLOTS) * len(SERIES)
        for i, value in enumerate(sample(res)):
            self.samples[at + i] = _byte(i, value)
        self.count += 1
        self.last = now
        return True

    def to_json(self) -> dict[str, Any]:
        """Oldest first, per series; `t` the time of the newest, `step` the spacing."""
        n = min(self.count, SLOTS)
        first = self.count - n
        slots = [(first + k) % SLOTS * len(SERIES) for k in range(n)]
        out: dict[str, Any] = {"t": self.last, "step": STEP_SEC, "count": n}
        for i, name in enumerate(SERIES):
            out[name] = [_value(i, self.samples[at + i]) for at in slots]
        return out
