"""Streamed answers open at once per client (`server.limits.max_streams_per_client`).

A streamed answer holds an upstream connection (and, on a local server, a slot) for up to
`timeouts.stream_total` (1 h). One client on an open gateway opened as many as it had connections
(`max_connections`, 4096): 300 streams from one address held every connection of a provider's pool
(256), and every other client's request waited `timeouts.pool`, then got 503. Per key, only rate
limits (requests per minute) bounded it, not how many stay open. Now the client's next stream is
refused with 429 `rate_limit_error` + `Retry-After: 1` in the schema of the API it spoke, before any
upstream call or budget reservation.

The client is the one the connection cap counts (`limits.peer_group`): the peer's IPv4 address or its
IPv6 /64; behind a proxy listed in `trusted_proxies`, the address it forwards (scope `client`).
"""

from __future__ import annotations

from typing import Any

from tierwise.errors import RateLimited
from tierwise.server.limits import peer_group

SLOT = "tierwise.stream_slot"  # scope key: the client whose count this request's stream is in


class StreamCap:
    __slots__ = ("limit", "open")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: dict[str, int] = {}  # client -> streams open (no entry at 0)

    def take(self, scope: dict[str, Any]) -> None:
        """Count a stream for this request's client, or refuse it (429) when the client has `limit` open."""
        client = peer_group(scope.get("client"))
        n = self.open.get(client, 0)
        if n >= self.limit:
            err = RateLimited(f"this client has {n} streamed answers open, as many as one client may "
                              "(server.limits.max_streams_per_client); retry when one has ended")
            err.retry_after = 1.0  # type: ignore[attr-defined]
            raise err
        self.open[client] = n + 1
        scope[SLOT] = client

    def give_back(self, scope: dict[str, Any]) -> None:
        client = scope.pop(SLOT, None)
        if client is not None:
            n = self.open[client] - 1
            if n:
                self.open[client] = n
            else:
                del self.open[client]
