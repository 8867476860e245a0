"""The client's address behind a trusted reverse proxy (`server.limits.trusted_proxies`).

By default no header moves a connection's address: any client can send `X-Forwarded-For`, so honouring it
would let one client pass for many at the connection cap (and write any address into the logs). Behind a
proxy, though, every connection is the proxy's and every client looks like one. With `trusted_proxies`
set, a connection whose peer is in one of those networks has each request's client read from the one
header the operator names (`forwarded_header`): `X-Forwarded-For` (nginx's `$proxy_add_x_forwarded_for`,
HAProxy's `option forwardfor`, Caddy, Traefik) or RFC 7239 `Forwarded` (`for=`). Only one of them: a proxy
that sets one passes the other through as the client sent it.

The list is read from the right (each proxy appends the address it saw): the first entry that is not itself
a trusted proxy is the client; what is left of it is whatever the client wrote and is never read. An entry
that is not an IP address (`unknown`, `_hidden`, garbage) stops the walk: the connection keeps the proxy's
address. At most `MAX_HOPS` entries are read, so a header of many thousands of entries costs no more.
"""

from __future__ import annotations

import ipaddress
from typing import Any

MAX_HOPS = 16
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TrustedProxies:
    def __init__(self, networks: list[str], header: str) -> None:
        self.networks: list[Network] = [ipaddress.ip_network(n, strict=False) for n in networks]
        self.header = header.lower().encode("ascii")
        self.rfc7239 = self.header == b"forwarded"

    def trusts(self, host: str | None) -> bool:
        addr = parse_address(host or "")
        return addr is not None and self._trusted(addr)

    def _trusted(self, addr: Address) -> bool:
        return any(addr.version == n.version and addr in n for n in self.networks)

    def client(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        """The client's address the trusted proxies report in a request's headers, or None (no header, or
        the nearest entry not trusted is not an address)."""
        name = self.header
        values = [v for n, v in headers if n == name]
        if not values:
            return None
        joined = b",".join(values).decode("latin-1")
        last: Address | None = None
        for entry in reversed(joined.rsplit(",", MAX_HOPS)[-MAX_HOPS:]):
            addr = parse_address(_for_value(entry) if self.rfc7239 else entry)
            if addr is None:
                return None
            if not self._trusted(addr):
                return str(addr)
            last = addr
        return str(last) if last is not None else None  # every hop read is a proxy: the farthest of them


def _for_value(element: str) -> str:
    """The `for=` parameter of one RFC 7239 element (`for=192.0.2.60;proto=http;by=203.0.113.43`)."""
    for pair in element.split(";"):
        key, _, value = pair.strip().partition("=")
        if key.lower() == "for":
            return value.strip().strip('"')
    return ""


def parse_address(text: str) -> Address | None:
    """An IP address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`;
    an IPv4-mapped IPv6 address as its IPv4 one. None for anything else (a zone index included)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    if not text or len(text) > 45 or "%" in text:
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def trusted_proxies(limits: Any) -> TrustedProxies | None:
    """The server's trusted proxies, or None when it trusts none (the default: no header is read)."""
    if not limits.trusted_proxies:
        return None
    return TrustedProxies(limits.trusted_proxies, limits.forwarded_header)
