"""Sleep and wake end to end: a render told to sleep stops its heartbeats (its sleep command
stops afrender itself), becomes WSL, a job only it may run wakes it through a wake-on-lan
system task whose wolwake packet is caught on loopback, and the job runs once it is back.
A wake that never brings the render back is retried, then logged as failed."""

from __future__ import annotations

import signal
import socket
import time

import pytest

from tests.conftest import ROOT, Farm, submit, wait_for
from wol.magic import magic_packet, parse_mac

pytestmark = pytest.mark.integration


def state(farm: Farm, name: str) -> list[str]:
    return next(r["state"] for r in farm.renders() if r["name"] == name)


def test_sleep_wake_for_work_and_a_wake_that_fails(make_farm) -> None:  # type: ignore[no-untyped-def]
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    farm: Farm = make_farm(
        af_render_cmd_wolsleep="kill -STOP $PPID; :",  # "sleeping": afrender stops itself
        # the default command, by name: found however afserver was started
        af_render_cmd_wolwake=f"wolwake --broadcast 127.0.0.1 --port {port}",
        af_wolwake_interval=1,
        af_wolwake_timeout=2.0,
        af_wolwake_retries=1,
    )
    # as the systemd unit starts it: packaging/afserver.sh, with a PATH of the system's only
    farm.server = farm._spawn(
        "afserver", [str(ROOT / "packaging" / "afserver.sh"), "-v"], env={"PATH": "/usr/bin:/bin"}
    )
    farm.wait_serving()
    r1 = farm.start_render("r1")
    r2 = farm.start_render("r2")
    wait_for(lambda: farm.online() == {"r1", "r2"}, 20, "renders online")
    mac = next(r["netifs"][0]["mac"] for r in farm.renders() if r["name"] == "r1")
    try:
        assert farm.afcmd("--admin", "rsleep", "r1|r2").returncode == 0
        seen = {"r1": set(), "r2": set()}

        def sleeping() -> bool:
            for name in seen:
                seen[name].update(state(farm, name))
            return all("WSL" in state(farm, n) for n in seen)

        wait_for(sleeping, 20, "both renders asleep")
        assert "WFL" in seen["r1"] and "WFL" in seen["r2"]

        # work that only r1 may do wakes r1 (and not r2)
        job = submit(
            farm,
            {
                "name": "wake",
                "hosts_mask": "r1",
                "blocks": [
                    {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 1, "command": "true"}
                ],
            },
        )
        wait_for(lambda: "WWK" in state(farm, "r1"), 20, "r1 waking")
        listener.settimeout(20)
        packets = set()
        deadline = time.monotonic() + 20
        while magic_packet(parse_mac(mac)) not in packets:
            assert time.monotonic() < deadline, "no magic packet for r1's MAC"
            packets.add(listener.recvfrom(200)[0])
        assert "WWK" not in state(farm, "r2")
        r1.send_signal(signal.SIGCONT)  # the host wakes
        wait_for(
            lambda: state(farm, "r1") == ["ONL"] or "ONL" in state(farm, "r1"), 20, "r1 back online"
        )
        assert "WWK" not in state(farm, "r1")
        wait_for(lambda: farm.job(job)["tasks_done"] == 1, 20, "the job done on r1")
        assert "woke up" in farm.afcmd("rlog", "r1").stdout

        # a wake that brings nothing back: retried once, then failed in the render's log
        assert farm.afcmd("--admin", "rwake", "r2").returncode == 0
        wait_for(
            lambda: "wake FAILED" in farm.afcmd("rlog", "r2").stdout, 30, "the failed wake logged"
        )
        log = farm.afcmd("rlog", "r2").stdout
        assert "attempt 2" in log and "WWK" not in state(farm, "r2")
    finally:
        for proc in (r1, r2):
            proc.send_signal(signal.SIGCONT)
        listener.close()
