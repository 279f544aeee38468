"""Where to send magic packets: the IPv4 broadcast address of every interface, found with
netifaces (the maintained fork netifaces-plus), computed from the address and netmask where
the OS gives none."""

from __future__ import annotations

import ipaddress
import socket

import netifaces


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
    """(interface, broadcast) for each non-loopback interface with IPv4."""
    found = []
    for name in netifaces.interfaces():
        for addr in netifaces.ifaddresses(name).get(netifaces.AF_INET, []):
            address = addr.get("addr", "")
            if not address or address.startswith("127."):
                continue
            broadcast = broadcast_for(address, addr.get("netmask"), addr.get("broadcast"))
            if broadcast and (name, broadcast) not in found:
                found.append((name, broadcast))
    return found


def send(packets: list[bytes], broadcasts: list[str], port: int) -> int:
    """Each packet to each broadcast address; returns how many datagrams went out. An
    address the host cannot send to now (its interface is down) is passed over; when none
    takes a packet, the last error is raised."""
    sent = 0
    failure: OSError | None = None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        for address in broadcasts:
            for packet in packets:
                try:
                    sock.sendto(packet, (address, port))
                except OSError as exc:
                    failure = exc
                    break
                sent += 1
    if failure is not None and not sent:
        raise failure
    return sent
