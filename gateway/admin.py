"""Which of the original's clients act with the admin role: a site's decision, in config.

The original's clients have no way to ask for the role (its GUI kept a client-side "GOD
mode"), so the gateway decides for them: a user named in ``af_admins`` whose connection
comes from a host of ``af_gateway_admin_hosts``. The host is the connection's source
address, not the ``host_name`` a request claims, so that a listed name alone is not enough.
Nobody is listed by default, which leaves the original's clients with a user's rights.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("gateway")

Resolver = Callable[[str], list[str]]


@dataclass(frozen=True, slots=True)
class AdminPolicy:
    admins: frozenset[str] = frozenset()
    addresses: frozenset[str] = frozenset()  # normalised source addresses


NOBODY = AdminPolicy()


def normal_address(address: str) -> str:
    """One spelling per address: IPv4-mapped IPv6 as IPv4, IPv6 compressed, no zone."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address.lower()
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def resolve(host: str) -> list[str]:
    """A listed host's addresses ([] when it does not resolve: it then admits nobody)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        log.warning("af_gateway_admin_hosts: '%s' does not resolve (%s): ignored", host, exc)
        return []
    return [str(info[4][0]) for info in infos]


def policy(
    admins: Iterable[str], hosts: Iterable[str], resolver: Resolver = resolve
) -> AdminPolicy:
    """The site's policy; listed names are resolved once, when the gateway starts."""
    names = frozenset(a for a in admins if isinstance(a, str) and a)
    addresses: set[str] = set()
    for host in hosts:
        if not isinstance(host, str) or not host.strip():
            continue
        host = host.strip()
        try:
            addresses.add(normal_address(str(ipaddress.ip_address(host))))
        except ValueError:
            addresses.update(normal_address(a) for a in resolver(host))
    if not names or not addresses:
        return NOBODY
    return AdminPolicy(names, frozenset(addresses))


def policy_from_config(cfg: Any) -> AdminPolicy:
    return policy(list(cfg["af_admins"] or []), list(cfg["af_gateway_admin_hosts"] or []))


def acts_as_admin(site: AdminPolicy, user: str, source: str) -> bool:
    """True when this user, connected from this address, acts with the admin role."""
    return bool(user) and user in site.admins and normal_address(source) in site.addresses
