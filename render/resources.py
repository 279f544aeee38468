"""Host facts and resource meter of the render client (afrender `host_resources`), via psutil.

`snapshot()` runs every few seconds on every farm host: it is cheap (static facts are cached,
CPU temperature is dropped for good when the host has no sensors) and never raises.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import re
import socket
import sys
import time

import psutil

log = logging.getLogger(__name__)

_MB = 1 << 20
_GB = 1 << 30
_MAC_OCTET = re.compile(r"^[0-9a-f]{1,2}$")
_TEMP_SENSORS = ("coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal", "acpitz")
_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq")
# Every host_resources field, in the original's order, at its "unknown" value.
_ZERO: dict = {
    "cpu_num": 0, "cpu_mhz": 0, "cpu_temp": 0, "cpu_loadavg": [0.0, 0.0, 0.0],
    **{f"cpu_{k}": 0 for k in _CPU_FIELDS},
    "mem_total_mb": 0, "mem_free_mb": 0, "mem_cached_mb": 0, "mem_buffers_mb": 0,
    "swap_total_mb": 0, "swap_used_mb": 0, "hdd_total_gb": 0, "hdd_free_gb": 0,
    "hdd_rd_kbsec": 0, "hdd_wr_kbsec": 0, "hdd_busy": 0, "net_recv_kbsec": 0, "net_send_kbsec": 0,
    "gpu_gpu_util": 0, "gpu_gpu_temp": 0, "gpu_mem_total_mb": 0, "gpu_mem_used_mb": 0,
    "gpu_string": "", "hw_info": "", "logged_in_users": [],
}  # fmt: skip


def render_name(override: str = "") -> str:
    """Override, else env AF_HOSTNAME, else the host name; lower-cased, domain cut."""
    name = override or os.environ.get("AF_HOSTNAME") or socket.gethostname()
    return name.strip().lower().split(".", 1)[0]


def os_string() -> str:
    """Platform tokens like the original: "unix linux 64", "unix macosx 64", "windows 64"."""
    if sys.platform.startswith("win"):
        tokens = ["windows"]
    elif sys.platform == "darwin":
        tokens = ["unix", "macosx"]
    else:
        tokens = ["unix", sys.platform.rstrip("0123456789") or "unix"]
    if sys.maxsize > 2**32:
        tokens.append("64")
    return " ".join(tokens)


def _is_loopback(name: str) -> bool:
    low = name.lower()
    return low == "lo" or re.fullmatch(r"lo\d+", low) is not None or "loopback" in low


def _normalize_mac(raw: str | None) -> str:
    """Lower-case colon-separated 6-octet MAC, or "" when missing, all zeros or not Ethernet."""
    parts = (raw or "").strip().lower().replace("-", ":").split(":")
    if len(parts) != 6 or not all(_MAC_OCTET.match(p) for p in parts):
        return ""
    mac = ":".join(p.zfill(2) for p in parts)
    return "" if mac == "00:00:00:00:00:00" else mac


def net_interfaces() -> list[dict]:
    """One dict per non-loopback interface with a real MAC (IPv4 lists may be empty)."""
    result = []
    for name, addrs in psutil.net_if_addrs().items():
        if _is_loopback(name):
            continue
        mac = ""
        addresses: list[str] = []
        broadcasts: list[str] = []
        for a in addrs:
            if a.family == psutil.AF_LINK:
                mac = mac or _normalize_mac(a.address)
            elif a.family == socket.AF_INET:
                addresses.append(a.address)
                if a.broadcast:
                    broadcasts.append(a.broadcast)
        if mac:
            result.append(
                {"name": name, "mac": mac, "addresses": addresses, "broadcasts": broadcasts}
            )
    return result


@functools.cache
def _hw_info() -> str:
    model = ""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:  # psutil does not give the CPU model name
                    if line.startswith(("model name", "Hardware")):
                        model = line.split(":", 1)[1].strip()
                        break
        except OSError as e:
            log.debug("hw_info: cannot read /proc/cpuinfo: %s", e)
    if not model:
        try:
            model = platform.processor()
        except Exception:  # platform may spawn `uname -p`
            model = ""
    model = " ".join((model or platform.machine() or "unknown").split())
    return f"{model} x{psutil.cpu_count() or 1}"


def _cpu_mhz() -> int:
    try:
        freq = psutil.cpu_freq()
        if freq:
            return int(freq.max or freq.current or 0)
    except Exception as e:
        log.debug("cpu_mhz unknown: %s", e)
    return 0


def _disk_gb(path: str) -> tuple[int, int]:
    usage = psutil.disk_usage(path)
    return usage.total // _GB, usage.free // _GB


def host_info(hddspace_path: str = "/") -> dict:
    """Static facts sent at registration."""
    vm = psutil.virtual_memory()
    try:
        swap_total = psutil.swap_memory().total // _MB
    except Exception as e:
        log.debug("swap unknown: %s", e)
        swap_total = 0
    try:
        hdd_total = _disk_gb(hddspace_path)[0]
    except Exception as e:
        log.debug("disk_usage(%r) failed: %s", hddspace_path, e)
        hdd_total = 0
    return {
        "os": os_string(),
        "cpu_num": psutil.cpu_count() or 1,
        "cpu_mhz": _cpu_mhz(),
        "mem_total_mb": vm.total // _MB,
        "swap_total_mb": swap_total,
        "hdd_total_gb": hdd_total,
        "hw_info": _hw_info(),
        "python": platform.python_version(),
        "boot_time": int(psutil.boot_time()),
    }


def _cpu_total(t) -> float:
    total = sum(t)
    if sys.platform.startswith("linux"):  # guest time is already in user/nice (as psutil does)
        total -= getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
    return total


def _pct(part: float, whole: float) -> int:
    return min(100, max(0, round(100.0 * part / whole))) if whole > 0 else 0


class ResourceMeter:
    """Produces `host_resources` dicts; rates are deltas between consecutive snapshots.

    CPU percentages are computed from this meter's own `cpu_times()` deltas rather than
    `cpu_times_percent(interval=None)`, whose "previous" sample is a psutil global per thread
    that any other caller would silently reset.
    """

    def __init__(self) -> None:
        self._cpu_num = psutil.cpu_count() or 1
        self._cpu_mhz = _cpu_mhz()
        self._hw_info = _hw_info()
        self._temp_ok = hasattr(psutil, "sensors_temperatures")
        self._cpu_prev = self._cpu_times()
        self._cpu_last = dict.fromkeys(_CPU_FIELDS, 0)
        self._prev_now: float | None = None
        self._disk_prev: tuple[int, int, dict[str, int]] | None = None
        self._net_prev: tuple[int, int] | None = None

    @staticmethod
    def _cpu_times():
        try:
            return psutil.cpu_times()
        except Exception as e:
            log.debug("cpu_times failed: %s", e)
            return None

    def snapshot(self, hddspace_path: str = "/", now: float | None = None) -> dict:
        now = time.monotonic() if now is None else now
        dt = now - self._prev_now if self._prev_now is not None else 0.0
        self._prev_now = now
        r = dict(_ZERO, cpu_num=self._cpu_num, cpu_mhz=self._cpu_mhz, hw_info=self._hw_info)
        r.update(cpu_loadavg=[0.0, 0.0, 0.0], logged_in_users=[])
        groups = (
            ("cpu", self._cpu), ("temp", self._temp), ("loadavg", self._loadavg),
            ("mem", self._mem), ("hdd", lambda r: self._hdd(r, hddspace_path)),
            ("disk_io", lambda r: self._disk_io(r, dt)), ("net", lambda r: self._net(r, dt)),
            ("users", self._users),
        )  # fmt: skip
        for name, fill in groups:
            try:
                fill(r)
            except Exception as e:  # a missing group must never stop the render
                log.debug("resources: %s unavailable: %s: %s", name, type(e).__name__, e)
        return r

    def _cpu(self, r: dict) -> None:
        cur = psutil.cpu_times()
        prev, self._cpu_prev = self._cpu_prev, cur
        whole = _cpu_total(cur) - _cpu_total(prev) if prev is not None else 0.0
        if whole > 0:
            base = prev
        elif not any(self._cpu_last.values()):  # no tick elapsed yet: average since boot
            base, whole = None, _cpu_total(cur)
        else:  # no tick elapsed: repeat the previous figures
            r.update({f"cpu_{k}": v for k, v in self._cpu_last.items()})
            return
        for k in _CPU_FIELDS:
            part = getattr(cur, k, 0.0) - (getattr(base, k, 0.0) if base is not None else 0.0)
            self._cpu_last[k] = r[f"cpu_{k}"] = _pct(part, whole)

    def _temp(self, r: dict) -> None:
        if not self._temp_ok:
            return
        sensors = psutil.sensors_temperatures()
        if not sensors:
            self._temp_ok = False  # reading /sys/class/hwmon each time for nothing is not cheap
            return
        key = next((k for k in _TEMP_SENSORS if k in sensors), next(iter(sensors)))
        r["cpu_temp"] = int(max((t.current or 0.0) for t in sensors[key]) if sensors[key] else 0)

    def _loadavg(self, r: dict) -> None:
        r["cpu_loadavg"] = [float(x) for x in psutil.getloadavg()]

    def _mem(self, r: dict) -> None:
        vm = psutil.virtual_memory()
        r["mem_total_mb"] = vm.total // _MB
        r["mem_free_mb"] = vm.available // _MB
        r["mem_cached_mb"] = getattr(vm, "cached", 0) // _MB
        r["mem_buffers_mb"] = getattr(vm, "buffers", 0) // _MB
        sw = psutil.swap_memory()
        r["swap_total_mb"] = sw.total // _MB
        r["swap_used_mb"] = sw.used // _MB

    def _hdd(self, r: dict, path: str) -> None:
        r["hdd_total_gb"], r["hdd_free_gb"] = _disk_gb(path)

    def _disk_io(self, r: dict, dt: float) -> None:
        total = psutil.disk_io_counters(perdisk=False)
        if total is None:
            return
        busy = {}
        if hasattr(total, "busy_time"):  # per disk: a partition never exceeds its disk
            busy = {k: v.busy_time for k, v in psutil.disk_io_counters(perdisk=True).items()}
        prev, self._disk_prev = self._disk_prev, (total.read_bytes, total.write_bytes, busy)
        if prev is None or dt <= 0:
            return
        r["hdd_rd_kbsec"] = max(0, int((total.read_bytes - prev[0]) / 1024 / dt))
        r["hdd_wr_kbsec"] = max(0, int((total.write_bytes - prev[1]) / 1024 / dt))
        deltas = [v - prev[2][k] for k, v in busy.items() if k in prev[2]]
        r["hdd_busy"] = _pct(max(deltas, default=0) / 1000.0, dt)

    def _net(self, r: dict, dt: float) -> None:
        recv = sent = 0
        for name, c in psutil.net_io_counters(pernic=True).items():
            if not _is_loopback(name):
                recv += c.bytes_recv
                sent += c.bytes_sent
        prev, self._net_prev = self._net_prev, (recv, sent)
        if prev is None or dt <= 0:
            return
        r["net_recv_kbsec"] = max(0, int((recv - prev[0]) / 1024 / dt))
        r["net_send_kbsec"] = max(0, int((sent - prev[1]) / 1024 / dt))

    def _users(self, r: dict) -> None:
        r["logged_in_users"] = sorted({u.name for u in psutil.users() if u.name})
