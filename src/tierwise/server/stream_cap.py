"""Model-bound requests in flight, and streamed answers open, at once per client
(`server.limits.max_requests_per_client`, `server.limits.max_streams_per_client`).

A streamed answer holds an upstream connection (and, on a local server, a slot) for up to
`timeouts.stream_total` (1 h). One client on an open gateway opened as many as it had connections
(`max_connections`, 4096): 300 streams from one address held every connection of a provider's pool
(256), and every other client's request waited `timeouts.pool`, then got 503. Per key, only rate
limits (requests per minute) bounded it, not how many stay open. Now the client's next stream is
refused with 429 `rate_limit_error` + `Retry-After: 1` in the schema of the API it spoke, before any
upstream call or budget reservation. A non-streamed call holds its connection as long (up to
`timeouts.total`, 600 s): 300 of them from one address held the same pool (review29b), so every
model-bound request is counted too, by a second `ClientCap` with its own limit; a request asking `n`
choices counts `n` (on an Anthropic upstream it is `n` calls at once).

The client is the one the connection cap counts (`limits.peer_group`): the peer's IPv4 address or its
IPv6 /64; behind a proxy listed in `trusted_proxies`, the address it forwards (scope `client`). Its
network (`limits.site_group`: an IPv6 /48 by default, `network_prefix_v6`) has the same cap: one host
is given a /48 or a /56 as readily as one IPv4 address, and counted per /64 it held 256 or 65,536
times the cap (review29b), where one IPv4 address (a household, an office's or a carrier's NAT) holds it
once. IPv4 is counted per address unless `network_prefix_v4` groups it.

Each count is handed back exactly once: `take` records what it counted in the request's scope only when
it admits, and `give_back` pops it: as the answer's last bytes leave (App.give_back_caps; a client at its cap
in a closed loop sends its next request then, and was refused while the stream's task ran to its end), or in
App.__call__'s `finally` on every other way a request ends.
"""

from __future__ import annotations

from typing import Any

from tierwise.errors import RateLimited
from tierwise.server.limits import peer_group, site_group

SLOT = "tierwise.stream_slot"  # scope key: (counts, weight) this request's stream holds
CALL_SLOT = "tierwise.call_slot"  # scope key: (counts, weight) this request holds as a model-bound request
MEMO = 4096  # addresses whose keys are remembered
NET = "/net"  # a network's count key: `site_group`'s address could equal a client's (the /48's first /64)


class ClientCap:
    __slots__ = ("limit", "memo", "open", "v4", "v6", "what", "setting", "slot")

    def __init__(
        self,
        limit: int,
        v4: int = 32,
        v6: int = 48,
        *,
        what: str = "streamed answers open",
        setting: str = "server.limits.max_streams_per_client",
        slot: str = SLOT,
    ) -> None:
        self.limit = limit
        self.v4, self.v6 = v4, v6  # (`server.limits.network_prefix_v4`/`_v6`)
        self.what, self.setting, self.slot = what, setting, slot
        self.open: dict[str, int] = {}  # client (or network + NET) -> count held (no entry at 0)
        self.memo: dict[
            str, tuple[str, ...]
        ] = {}  # address -> `keys` (peer_group and site_group: ~50 bytecodes)

    def keys(self, scope: dict[str, Any]) -> tuple[str, ...]:
        """The counts a request from this scope's client is in: its own, and its network's (remembered per
        address: every model-bound request asks; at most MEMO addresses, then forgotten all at once)."""
        client = scope.get("client")
        host = client[0] if client else ""
        keys = self.memo.get(host)
        if keys is None:
            peer = peer_group(client)
            site = site_group(peer, self.v4, self.v6)
            keys = (peer,) if site == peer else (peer, site + NET)
            if len(self.memo) >= MEMO:
                self.memo.clear()
            self.memo[host] = keys
        return keys

    def take(
        self, scope: dict[str, Any], weight: int = 1, keys: tuple[str, ...] | None = None
    ) -> tuple[str, ...]:
        """Count `weight` for this request's client (and its network), or refuse it (429) when that would pass
        `limit`. A request heavier than the limit alone is admitted when its client holds nothing."""
        if keys is None:
            keys = self.keys(scope)
        open_ = self.open
        if len(keys) == 1:  # (an IPv4 client: one count; the loops below cost ~20 bytecodes more)
            k = keys[0]
            n = open_.get(k, 0)
            if n and n + weight > self.limit:
                raise self.refusal(k, keys, n)
            open_[k] = n + weight
        else:
            for k in keys:
                n = open_.get(k, 0)
                if n and n + weight > self.limit:
                    raise self.refusal(k, keys, n)
            for k in keys:
                open_[k] = open_.get(k, 0) + weight
        scope[self.slot] = (keys, weight)
        return keys

    def refusal(self, k: str, keys: tuple[str, ...], n: int) -> RateLimited:
        if k == keys[0]:
            who = "this client"
        else:
            site = k[: -len(NET)]
            who = f"this client's network ({site}/{self.v6 if ':' in site else self.v4})"
        err = RateLimited(
            f"{who} has {n} {self.what}, as many as one client may ({self.setting}); retry when one has ended"
        )
        err.retry_after = 1.0  # type: ignore[attr-defined]
        return err

    def give_back(self, scope: dict[str, Any]) -> None:
        keys, weight = scope.pop(self.slot, ((), 0))
        open_ = self.open
        for k in keys:
            n = open_[k] - weight
            if n:
                open_[k] = n
            else:
                del open_[k]


StreamCap = ClientCap  # (the name the stream cap had)
