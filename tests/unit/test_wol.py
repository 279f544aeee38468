from __future__ import annotations

import pytest

from wol.magic import PACKET_SIZE, magic_packet, parse_mac
from wol.network import broadcast_for


@pytest.mark.parametrize(
    "text", ["aa:bb:cc:dd:ee:ff", "AA-BB-CC-DD-EE-FF", "aabbccddeeff", "aabb.ccdd.eeff"]
)
def test_mac_forms(text: str) -> None:
    assert parse_mac(text) == bytes.fromhex("aabbccddeeff")


@pytest.mark.parametrize(
    "text", ["zz:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee", "", "aa:bb:cc:dd:ee:ff:00"]
)
def test_bad_macs_are_clear_errors(text: str) -> None:
    with pytest.raises(ValueError, match="bad MAC address"):
        parse_mac(text)


def test_packet_bytes() -> None:
    packet = magic_packet(bytes.fromhex("001122334455"))
    assert len(packet) == PACKET_SIZE
    assert packet[:6] == b"\xff" * 6 and packet[6:] == bytes.fromhex("001122334455") * 16


@pytest.mark.parametrize(
    ("address", "netmask", "expected"),
    [
        ("10.1.2.3", "255.0.0.0", "10.255.255.255"),
        ("192.168.5.20", "255.255.255.0", "192.168.5.255"),
        ("10.99.0.1", "255.255.255.252", "10.99.0.3"),
        ("10.99.0.1", "255.255.255.255", None),
        ("10.99.0.1", None, None),
    ],
)
def test_broadcast_from_address_and_netmask(
    address: str, netmask: str | None, expected: str | None
) -> None:
    assert broadcast_for(address, netmask) == expected


def test_a_given_broadcast_wins() -> None:
    assert broadcast_for("10.0.0.1", "255.255.255.0", "10.0.0.127") == "10.0.0.127"


def test_an_interface_reporting_its_own_address_as_broadcast_gets_it_computed() -> None:
    assert broadcast_for("10.98.0.1", "255.255.255.252", "10.98.0.1") == "10.98.0.3"
