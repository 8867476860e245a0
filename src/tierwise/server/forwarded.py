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
from collections.abc import Iterator
from typing import Any

MAX_HOPS = 16
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TrustedProxies:
    def __init__(self, networks: list[str], header: str) -> None:
        self.networks: list[Network] = [unmapped(ipaddress.ip_network(n, strict=False)) for n in networks]
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
        entries = _elements(joined) if self.rfc7239 else reversed(joined.rsplit(",", MAX_HOPS)[-MAX_HOPS:])
        last: Address | None = None
        for entry in entries:
            addr = parse_address(_for_value(entry) if self.rfc7239 else entry)
            if addr is None:
                return None
            if not self._trusted(addr):
                return str(addr)
            last = addr
        return str(last) if last is not None else None  # every hop read is a proxy: the farthest of them


def _split_quoted(text: str, sep: str, limit: int) -> Iterator[str]:
    """`text` split at `sep` outside quoted-strings, from the right: at most `limit` pieces, nearest first,
    lazily (the walk stops at the client: what the client wrote left of it is never scanned).
    RFC 7239 values are tokens or quoted-strings, and a quoted one may hold `,` or `;` (a proxy's `host="…"`
    with a Host the client chose): a plain split read a client's `host="a,for=6.6.6.6"` as the proxy's own
    `for=` (review28d). Quotes that never close leave the rest as one piece, which is no address."""
    if '"' not in text:  # (the usual case: no quoted-string, a plain split)
        yield from reversed(text.rsplit(sep, limit)[-limit:])
        return
    n, end, quoted, i = 0, len(text), False, len(text) - 1
    while i >= 0 and n < limit:
        c = text[i]
        if c == '"':
            if quoted and i > 0 and text[i - 1] == "\\":  # a quoted-pair `\"` (read from the right)
                i -= 2
                continue
            quoted = not quoted
        elif c == sep and not quoted:
            yield text[i + 1:end]
            n, end = n + 1, i
        i -= 1
    if i < 0 and n < limit:
        yield text[:end] if not quoted else '"'  # an open quote: nothing in it is read


def _elements(joined: str) -> Iterator[str]:
    """The forwarded-elements of RFC 7239 `Forwarded`, nearest proxy first, at most `MAX_HOPS`."""
    return _split_quoted(joined, ",", MAX_HOPS)


def _for_value(element: str) -> str:
    """The `for=` parameter of one RFC 7239 element (`for=192.0.2.60;proto=http;by=203.0.113.43`); "" when
    it has none, two (RFC 7239 allows one), or a value that is neither a token nor a whole quoted-string."""
    found: list[str] = []
    for pair in _split_quoted(element, ";", 64):
        key, _, value = pair.strip().partition("=")
        if key.lower() == "for":
            found.append(value)
    if len(found) != 1:
        return ""
    value = found[0]
    if value.startswith('"'):
        if len(value) < 2 or not value.endswith('"') or '"' in value[1:-1]:
            return ""
        return value[1:-1]
    return "" if '"' in value else value


def unmapped(net: Network) -> Network:
    """An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) as its IPv4 one: addresses are compared unmapped
    (`parse_address`), so as written it never matched its own proxies (review28d)."""
    mapped = net.network_address.ipv4_mapped if isinstance(net, ipaddress.IPv6Network) else None
    if mapped is None or net.prefixlen < 96:
        return net
    return ipaddress.IPv4Network((mapped, net.prefixlen - 96))


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


def network_problem(text: str) -> str | None:
    """What is wrong with one `server.limits.trusted_proxies` entry, or None (config.py asks)."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return f"{text!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8, ::1)"
    # (review28d) A catch-all trusts every client to write its own address; host bits (`10.0.0.1/8`) silently
    # trusted the whole /8; a zone index never matched (connections are compared without one).
    if unmapped(net).prefixlen == 0:  # (`::ffff:0.0.0.0/96` is every IPv4 address)
        return (f"{text!r} trusts every address: any client could then name itself anyone (list only your "
                "proxies' addresses or networks)")
    if "%" in text:
        return f"{text!r}: a zone index (%…) is not supported; write the address without it"
    try:
        ipaddress.ip_network(text)
    except ValueError:
        return f"{text!r} has host bits set: write the network ({net}) or the one address"
    return None


def trusted_proxies(limits: Any) -> TrustedProxies | None:
    """The server's trusted proxies, or None when it trusts none (the default: no header is read)."""
    if not limits.trusted_proxies:
        return None
    return TrustedProxies(limits.trusted_proxies, limits.forwarded_header)
