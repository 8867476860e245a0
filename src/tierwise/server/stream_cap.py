"""Streamed answers open at once per client (`server.limits.max_streams_per_client`).

A streamed answer holds an upstream connection (and, on a local server, a slot) for up to
`timeouts.stream_total` (1 h). One client on an open gateway opened as many as it had connections
(`max_connections`, 4096): 300 streams from one address held every connection of a provider's pool
(256), and every other client's request waited `timeouts.pool`, then got 503. Per key, only rate
limits (requests per minute) bounded it, not how many stay open. Now the client's next stream is
refused with 429 `rate_limit_error` + `Retry-After: 1` in the schema of the API it spoke, before any
upstream call or budget reservation.

The client is the one the connection cap counts (`limits.peer_group`): the peer's IPv4 address or its
IPv6 /64; behind a proxy listed in `trusted_proxies`, the address it forwards (scope `client`). Its
network (`limits.site_group`: an IPv6 /48 by default, `network_prefix_v6`) has the same cap: one host
is given a /48 or a /56 as readily as one IPv4 address, and counted per /64 it held 256 or 65,536
times the cap (review29b), where one IPv4 address (a household, an office's or a carrier's NAT) holds it
once. IPv4 is counted per address unless `network_prefix_v4` groups it.
"""

from __future__ import annotations

from typing import Any

from tierwise.errors import RateLimited
from tierwise.server.limits import peer_group, site_group

SLOT = "tierwise.stream_slot"  # scope key: the counts (client, and its network) this request's stream is in
NET = "/net"  # a network's count key: `site_group`'s address could equal a client's (the /48's first /64)


class StreamCap:
    __slots__ = ("limit", "open", "v4", "v6")

    def __init__(self, limit: int, v4: int = 32, v6: int = 48) -> None:
        self.limit = limit
        self.v4, self.v6 = v4, v6  # (`server.limits.network_prefix_v4`/`_v6`)
        self.open: dict[str, int] = {}  # client (or network + NET) -> streams open (no entry at 0)

    def take(self, scope: dict[str, Any]) -> None:
        """Count a stream for this request's client, or refuse it (429) when the client, or its network, has
        `limit` open."""
        client = peer_group(scope.get("client"))
        site = site_group(client, self.v4, self.v6)
        keys: tuple[str, ...] = (client,) if site == client else (client, site + NET)
        for k in keys:
            n = self.open.get(k, 0)
            if n >= self.limit:
                who = (
                    "this client"
                    if k == client
                    else f"this client's network ({site}/{self.v6 if ':' in site else self.v4})"
                )
                err = RateLimited(
                    f"{who} has {n} streamed answers open, as many as one client may "
                    "(server.limits.max_streams_per_client); retry when one has ended"
                )
                err.retry_after = 1.0  # type: ignore[attr-defined]
                raise err
        for k in keys:
            self.open[k] = self.open.get(k, 0) + 1
        scope[SLOT] = keys

    def give_back(self, scope: dict[str, Any]) -> None:
        for k in scope.pop(SLOT, ()):
            n = self.open[k] - 1
            if n:
                self.open[k] = n
            else:
                del self.open[k]
