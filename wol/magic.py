"""Magic packets (pure): 6 bytes of 0xFF, then the MAC 16 times."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[:\-.]")
_HEX12 = re.compile(r"[0-9a-fA-F]{12}")
PACKET_SIZE = 102


def parse_mac(text: str) -> bytes:
    """A MAC as 6 bytes; accepts aa:bb:cc:dd:ee:ff, aa-bb-…, aabb.ccdd.eeff or plain hex."""
    plain = _SEPARATORS.sub("", text.strip())
    if not _HEX12.fullmatch(plain):
        raise ValueError(
            f"bad MAC address {text!r}: expected 12 hex digits, e.g. aa:bb:cc:dd:ee:ff"
        )
    return bytes.fromhex(plain)


def magic_packet(mac: bytes) -> bytes:
    if len(mac) != 6:
        raise ValueError(f"a MAC is 6 bytes, got {len(mac)}")
    return b"\xff" * 6 + mac * 16
