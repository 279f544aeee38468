"""render.resources against real psutil on this machine (no mocks)."""

from __future__ import annotations

import re
import socket
import sys

import msgpack
import psutil
import pytest

from render.resources import (
    ResourceMeter,
    host_info,
    net_interfaces,
    os_string,
    render_name,
)

MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")

CPU_PERCENT = ["cpu_user", "cpu_nice", "cpu_system", "cpu_idle", "cpu_iowait", "cpu_irq"]
CPU_PERCENT.append("cpu_softirq")
PERCENT_FIELDS = [*CPU_PERCENT, "hdd_busy"]
INT_FIELDS = [
    *("cpu_num", "cpu_mhz", "cpu_temp", *CPU_PERCENT),
    *("mem_total_mb", "mem_free_mb", "mem_cached_mb", "mem_buffers_mb"),
    *("swap_total_mb", "swap_used_mb", "hdd_total_gb", "hdd_free_gb"),
    *("hdd_rd_kbsec", "hdd_wr_kbsec", "hdd_busy", "net_recv_kbsec", "net_send_kbsec"),
    *("gpu_gpu_util", "gpu_gpu_temp", "gpu_mem_total_mb", "gpu_mem_used_mb"),
]
RATE_FIELDS = ("hdd_rd_kbsec", "hdd_wr_kbsec", "net_recv_kbsec", "net_send_kbsec")
ALL_FIELDS = set(INT_FIELDS) | {"cpu_loadavg", "gpu_string", "hw_info", "logged_in_users"}


def test_render_name_override_lowercases_and_cuts_domain(monkeypatch):
    monkeypatch.setenv("AF_HOSTNAME", "ignored.example.com")
    assert render_name("Render-07.Studio.Example.COM") == "render-07"
    assert render_name("NODE") == "node"


def test_render_name_from_env(monkeypatch):
    monkeypatch.setenv("AF_HOSTNAME", "BladeX.farm.local")
    assert render_name() == "bladex"


def test_render_name_from_hostname(monkeypatch):
    monkeypatch.delenv("AF_HOSTNAME", raising=False)
    expected = socket.gethostname().lower().split(".", 1)[0]
    assert render_name() == expected
    assert render_name() and "." not in render_name()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux-only expectation")
def test_os_string_linux():
    assert os_string() == ("unix linux 64" if sys.maxsize > 2**32 else "unix linux")


def test_net_interfaces_shape():
    ifs = net_interfaces()
    for netif in ifs:
        assert set(netif) == {"name", "mac", "addresses", "broadcasts"}
        assert netif["name"] != "lo"
        assert MAC_RE.match(netif["mac"]), netif
        assert netif["mac"] != "00:00:00:00:00:00"
        assert all("." in a and not a.startswith("127.") for a in netif["addresses"])
        assert all(isinstance(b, str) for b in netif["broadcasts"])


def test_net_interfaces_present_on_this_machine():
    others = [n for n in psutil.net_if_addrs() if n != "lo"]
    if not others:
        pytest.skip("this machine has no non-loopback network interface")
    ifs = net_interfaces()
    assert ifs
    if "eth0" in psutil.net_if_addrs():
        eth0 = next(n for n in ifs if n["name"] == "eth0")
        assert eth0["addresses"]


def test_host_info():
    info = host_info("/")
    assert info["os"] == os_string()
    assert info["cpu_num"] == psutil.cpu_count()
    for key in ("cpu_mhz", "mem_total_mb", "swap_total_mb", "hdd_total_gb", "boot_time"):
        assert isinstance(info[key], int) and info[key] >= 0, key
    assert info["mem_total_mb"] > 0
    assert isinstance(info["hw_info"], str) and info["hw_info"]
    assert isinstance(info["python"], str)
    msgpack.packb(info)


def _check_snapshot(snap: dict) -> None:
    assert set(snap) == ALL_FIELDS
    for key in INT_FIELDS:
        assert type(snap[key]) is int, (key, snap[key])
        assert snap[key] >= 0, key
    for key in PERCENT_FIELDS:
        assert 0 <= snap[key] <= 100, (key, snap[key])
    assert snap["cpu_num"] >= 1
    assert len(snap["cpu_loadavg"]) == 3
    assert all(type(x) is float and x >= 0 for x in snap["cpu_loadavg"])
    assert 0 < snap["mem_free_mb"] <= snap["mem_total_mb"]
    assert snap["swap_used_mb"] <= snap["swap_total_mb"]
    assert snap["hdd_total_gb"] > 0 and snap["hdd_free_gb"] <= snap["hdd_total_gb"]
    assert snap["gpu_string"] == "" and isinstance(snap["hw_info"], str)
    assert snap["logged_in_users"] == sorted(set(snap["logged_in_users"]))
    assert all(isinstance(u, str) for u in snap["logged_in_users"])
    assert msgpack.unpackb(msgpack.packb(snap)) == snap


def test_snapshot_fields_types_and_ranges():
    meter = ResourceMeter()
    first = meter.snapshot("/")
    _check_snapshot(first)
    assert all(first[k] == 0 for k in RATE_FIELDS)
    # Generate some I/O so that deltas are not trivially zero.
    with open("/dev/null", "wb") as f:
        f.write(b"x" * 65536)
    second = meter.snapshot("/")
    _check_snapshot(second)
    assert all(second[k] >= 0 for k in RATE_FIELDS)
    assert sum(second[f"cpu_{k}"] for k in ("user", "nice", "system", "idle", "iowait")) <= 102


def test_snapshot_with_explicit_now():
    meter = ResourceMeter()
    meter.snapshot("/", now=1000.0)
    snap = meter.snapshot("/", now=1002.5)
    _check_snapshot(snap)
    # A clock that does not advance must give zero rates, not a division error.
    same = meter.snapshot("/", now=1002.5)
    assert all(same[k] == 0 for k in RATE_FIELDS)


def test_snapshot_never_raises_on_missing_path():
    snap = ResourceMeter().snapshot("/no/such/path/for/afrender")
    assert snap["hdd_total_gb"] == 0 and snap["hdd_free_gb"] == 0
    assert snap["mem_total_mb"] > 0  # other groups still filled
    msgpack.packb(snap)
