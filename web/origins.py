"""Which requests may change something (pure: headers in, a refusal or None out).

A browser sends a cross-site "simple" request (a form, or a `fetch` with `text/plain`)
without asking first, with the user's cookies and network position: the page of any site
the user opens could submit jobs whose commands run on renders. So a request that changes
state must come from our own origin and carry a body no other site can send unasked:
JSON (a cross-origin JSON request needs a CORS preflight, which this server never grants),
or a form with our anti-forgery token.

A request with neither `Origin`, `Sec-Fetch-Site` nor `Referer` is not from a browser:
browsers send `Origin` with every POST (Fetch standard), and always with a cross-origin
one. Scripts and curl send none of these and may go on; they still need JSON.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_PATHS = frozenset({"/stats/admin"})  # HTML forms, checked by their anti-forgery token
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]  # scheme, host, port


def parse_origin(text: str) -> Origin | None:
    """`scheme://host[:port]` as a comparable triple; None for `null` or anything else."""
    try:
        url = urlsplit(text.strip())
        port = url.port
    except ValueError:
        return None
    scheme = url.scheme.lower()
    if scheme not in DEFAULT_PORTS or not url.hostname:
        return None
    return scheme, url.hostname.lower(), port or DEFAULT_PORTS[scheme]


def own_origin(scheme: str, host_header: str) -> Origin | None:
    """The origin a request was sent to: its scheme and its `Host` header."""
    return parse_origin(f"{scheme}://{host_header}") if host_header else None


def trusted_origins(texts: Collection[str]) -> frozenset[Origin]:
    """The configured `af_web_trusted_origins`; an entry that is no origin is an error."""
    parsed = set()
    for text in texts:
        origin = parse_origin(text)
        if origin is None:
            raise ValueError(f"af_web_trusted_origins: {text!r} is not scheme://host[:port]")
        parsed.add(origin)
    return frozenset(parsed)


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def loopback_hosts(bind_address: str, trusted: frozenset[Origin]) -> frozenset[str] | None:
    """The host names a web bound to loopback answers to, or None (any) when a site opened
    it to the network. A page of another site whose name was made to resolve to 127.0.0.1
    (DNS rebinding) is same-origin with what it calls; its Host header gives it away."""
    try:
        loopback = ipaddress.ip_address(bind_address).is_loopback
    except ValueError:
        loopback = bind_address == "localhost"
    return LOOPBACK_NAMES | {host for _, host, _ in trusted} if loopback else None


def host_refusal(host_header: str, allowed: frozenset[str] | None) -> str | None:
    """Why a request's Host is not one this web answers to, or None."""
    if allowed is None:
        return None
    url = parse_origin(f"http://{host_header}") if host_header else None
    if url is not None and url[1] in allowed:
        return None
    return f"Host {host_header[:100]!r} is not this server (it answers to {', '.join(sorted(allowed))})"


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def origin_refusal(
    headers: Mapping[str, str], own: Origin | None, trusted: frozenset[Origin] = frozenset()
) -> str | None:
    """Why a state-changing request is not from our own origin, or None when it is (or
    when no browser sent it). `headers`: lower-case names."""

    def ours(text: str) -> bool:
        origin = parse_origin(text)
        return origin is not None and (origin == own or origin in trusted)

    if "origin" in headers:
        if ours(headers["origin"]):
            return None
        return f"cross-origin request refused: Origin {headers['origin'][:100]!r} is not this site"
    if "sec-fetch-site" in headers:
        if headers["sec-fetch-site"].strip().lower() == "same-origin":
            return None
        return f"cross-origin request refused: Sec-Fetch-Site {headers['sec-fetch-site'][:40]!r}"
    if "referer" in headers:
        if ours(headers["referer"]):
            return None
        return "cross-origin request refused: the Referer is not this site"
    return None


def content_refusal(path: str, content_type: str) -> str | None:
    """Why the body of a state-changing request is not one we accept, or None."""
    want = FORM_TYPE if path in FORM_PATHS else JSON_TYPE
    got = media_type(content_type)
    if got == want:
        return None
    return f"expected Content-Type: {want}, got {got[:60] or 'none'!r}"
