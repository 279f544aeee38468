"""wolwake inside a network namespace the test creates: one 102-byte packet per MAC per
broadcast address, received there. Nothing leaves loopback or the test's namespace."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from wol.magic import magic_packet, parse_mac

pytestmark = pytest.mark.integration

LISTENER = """
import socket, sys, time
out = open(sys.argv[1], "w")
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("0.0.0.0", 9))
print("ready", file=out, flush=True)
sock.settimeout(0.5)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        data, (host, _) = sock.recvfrom(2048)
    except socket.timeout:
        continue
    print(len(data), data.hex(), flush=True, file=out)
"""


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


@pytest.fixture
def netns() -> Iterator[str]:
    """A namespace with two veth ends: 10.99.0.1/24 and 10.98.0.1/30 (private test ranges)."""
    name = f"afwol{os.getpid()}"
    made = ip("netns", "add", name)
    if made.returncode != 0:
        reason = f"cannot create a network namespace here: {made.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI runs as root: this must work there)")
        pytest.skip(reason)
    try:
        steps = [
            ("link", "add", "wol0", "type", "veth", "peer", "name", "wol1"),
            ("addr", "add", "10.99.0.1/24", "brd", "+", "dev", "wol0"),
            ("addr", "add", "10.98.0.1/30", "dev", "wol1"),
            ("link", "set", "wol0", "up"),
            ("link", "set", "wol1", "up"),
            ("link", "set", "lo", "up"),
        ]
        for step in steps:
            done = ip("netns", "exec", name, "ip", *step)
            assert done.returncode == 0, (step, done.stderr)
        yield name
    finally:
        ip("netns", "del", name)


def test_wolwake_sends_one_packet_per_mac_per_broadcast(netns: str, tmp_path: Path) -> None:
    received = tmp_path / "received"
    listener = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", LISTENER, str(received)]
    )
    try:
        wait_for(lambda: received.exists() and "ready" in received.read_text(), 10, "the listener")
        macs = ["00:11:22:33:44:55", "66-77-88-99-aa-bb"]
        wake = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                netns,
                sys.executable,
                "-c",
                "from wol.commands import wolwake; wolwake()",
                *macs,
            ],
            capture_output=True,
            text=True,
            timeout=20,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert wake.returncode == 0, wake.stderr
        assert "4 magic packets (2 MACs) to " in wake.stdout and " port 9" in wake.stdout
        assert "10.99.0.255" in wake.stdout and "10.98.0.3" in wake.stdout
        wait_for(lambda: len(received.read_text().splitlines()) >= 5, 10, "four packets")
    finally:
        listener.terminate()
        listener.wait(10)
    lines = received.read_text().splitlines()[1:]
    assert len(lines) == 4
    expected = {magic_packet(parse_mac(m)).hex() for m in macs}
    assert all(line.split()[0] == "102" for line in lines)
    assert {line.split()[1] for line in lines} == expected


def test_wolwake_refuses_bad_macs_without_sending(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from wol.commands import wolwake; wolwake()",
            "--broadcast",
            "127.255.255.255",
            "zz:11:22:33:44:55",
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 2 and "bad MAC address 'zz:11:22:33:44:55'" in done.stderr
