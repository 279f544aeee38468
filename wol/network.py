"""Where to send magic packets: the IPv4 broadcast address of every interface that is up,
found with psutil (the archived netifaces is not needed), computed from the address and
netmask where the OS gives none."""

from __future__ import annotations

import ipaddress
import socket

import psutil


def broadcast_for(address: str, netmask: str | None, given: str | None = None) -> str | None:
    """The broadcast address of an IPv4 interface address; None where there is none (/32).

    An interface set up without one reports its own address as "broadcast": that is none."""
    if given and given != address:
        return given
    if not netmask:
        return None
    network = ipaddress.IPv4Network(f"{address}/{netmask}", strict=False)
    if network.prefixlen >= 32:
        return None  # a host route: no one else on that wire
    if network.prefixlen == 31:
        return None  # point-to-point (RFC 3021): no broadcast
    return str(network.broadcast_address)


def broadcast_addresses() -> list[tuple[str, str]]:
    """(interface, broadcast) for each up, non-loopback interface with IPv4."""
    stats = psutil.net_if_stats()
    found = []
    for name, addresses in psutil.net_if_addrs().items():
        stat = stats.get(name)
        if stat is None or not stat.isup:
            continue
        for addr in addresses:
            if addr.family != socket.AF_INET or addr.address.startswith("127."):
                continue
            broadcast = broadcast_for(addr.address, addr.netmask, addr.broadcast)
            if broadcast and (name, broadcast) not in found:
                found.append((name, broadcast))
    return found


def send(packets: list[bytes], broadcasts: list[str], port: int) -> int:
    """Each packet to each broadcast address; returns how many datagrams went out."""
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        for address in broadcasts:
            for packet in packets:
                sock.sendto(packet, (address, port))
                sent += 1
    return sent
