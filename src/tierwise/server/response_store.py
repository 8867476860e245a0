"""Responses the gateway stored for `previous_response_id`: bounded, expiring, per client key.

A stored response is the conversation a later turn continues from (its input items plus its
output items), kept as compact JSON bytes so its size is known exactly. Bounds (all in
`server.responses`): a size per response (larger ones are not stored), a count and a byte total
(the oldest go first), and a time to live. The count and byte total are shared by every key, so an
eviction takes the oldest response of the key holding the most (bytes when over the byte total, responses
when over the count): a client filling the store pushes out its own responses, not another client's that
holds less. Each entry carries its owner (a digest of the gateway
key that made it, see wire/openai_responses.owner_of): another key asking for it is told it does
not exist, the same answer as for an id never stored, so ids cannot be probed across keys.

In memory, per process: a restart forgets every stored response (documented in docs/responses.md).
Cost on the request path: one dict lookup per `previous_response_id`, one `orjson.dumps` of the
conversation per stored answer.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson


class ResponseStore:
    def __init__(self, *, max_count: int, max_bytes: int, max_response_bytes: int, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.max_response_bytes = max_response_bytes
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: OrderedDict[str, tuple[str, float, bytes]] = OrderedDict()  # id → (owner, expiry, items)
        self.bytes = 0
        # Per owner: its ids oldest first, and the bytes they hold (who is evicted first).
        self._owned: dict[str, OrderedDict[str, None]] = {}
        self._owned_bytes: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, owner: str, response_id: str, items: list[Any]) -> bool:
        """Store `items` under `response_id`; False when it is larger than one response may be."""
        if self.max_count <= 0:
            return False
        data = orjson.dumps(items)
        if len(data) > self.max_response_bytes:
            return False
        self._expire()
        self._drop(response_id)
        self._entries[response_id] = (owner, self.clock() + self.ttl_s, data)
        self.bytes += len(data)
        self._owned.setdefault(owner, OrderedDict())[response_id] = None
        self._owned_bytes[owner] = self._owned_bytes.get(owner, 0) + len(data)
        while self._entries and (over_bytes := self.bytes > self.max_bytes) | (len(self._entries) > self.max_count):
            # The largest holder (by bytes or by count, whichever bound is exceeded) gives up its oldest.
            if over_bytes:
                biggest = max(self._owned_bytes, key=self._owned_bytes.__getitem__)
            else:
                biggest = max(self._owned, key=lambda o: len(self._owned[o]))
            self._drop(next(iter(self._owned[biggest])))
        return True

    def get(self, owner: str, response_id: Any) -> list[Any] | None:
        """The stored items, or None when missing, expired or stored by another key."""
        if not isinstance(response_id, str):
            return None
        entry = self._entries.get(response_id)
        if entry is None:
            return None
        who, expiry, data = entry
        if expiry <= self.clock():
            self._drop(response_id)
            return None
        if not hmac.compare_digest(who.encode(), owner.encode()):
            return None
        items: list[Any] = orjson.loads(data)
        return items

    def _drop(self, response_id: str) -> None:
        entry = self._entries.pop(response_id, None)
        if entry is not None:
            owner, _, data = entry
            self.bytes -= len(data)
            mine = self._owned[owner]
            del mine[response_id]
            if mine:
                self._owned_bytes[owner] -= len(data)
            else:
                del self._owned[owner], self._owned_bytes[owner]

    def _expire(self) -> None:
        now = self.clock()
        # Insertion order is expiry order (one TTL for all): stop at the first live entry.
        while self._entries:
            rid, (_, expiry, _) = next(iter(self._entries.items()))
            if expiry > now:
                return
            self._drop(rid)
