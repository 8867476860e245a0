"""What one gateway knows of the settled spend in every budget counter of the Redis store, to add back should Redis
come back empty (`store_redis.py`).

Each counter's settled dollars and tokens (`s<slot>`, `k<slot>` in its hash) are sampled about once a second from
the counters settled since the last look (a sorted set the settlement script keeps), and this gateway's own
settlements since a counter's sample are kept beside it, ordered by Redis's clock (every script call reads TIME, and
Redis runs them one at a time). Its offer for a counter is the sample plus its own settlements after it: a lower
bound of what the counter held at the loss, which counts the share of a gateway no longer running up to the last
sample (before session 30, costs2, each gateway offered only its own settlements: a dead one's share was lost). It
also offers all it settled itself in the counter. The store adds back the larger of the largest first offer and the
sum of the second ones per counter, each gateway's once (`redis_scripts.RESTORE`): both are lower bounds, the sum
exact for the gateways still running (what a look too recent to have sampled leaves out).
"""

from __future__ import annotations

import math
from typing import Any

MAX_COUNTERS = 50_000  # counters mirrored at most (past it, those that expire first are forgotten)
MAX_OWN = 4_096  # own settlements kept per counter between two samples at most (merged past it)


class SpendMirror:
    def __init__(self) -> None:
        # (key, slot) -> [sampled usd, sampled tokens, when sampled (Redis's clock), expires at (this host's clock),
        #                 own settlements after the sample: [(when, usd, tokens)], own usd in all, own tokens in all]
        self.counters: dict[tuple[str, int], list[Any]] = {}
        # Redis's clock at the last complete look: the next one reads counters settled after it (a score after "[":
        # at or after it, a page of the look having ended there)
        self.since = "0"
        # The counters changed since `spend_file.py` last saved them: a save writes only these (review33b: every
        # counter was written at each save, 50,000 of them 1.2 s of a thread and 9.7 MB a second under traffic)
        self.changed: set[tuple[str, int]] = set()

    def _get(self, key: str, slot: int, now: float) -> list[Any]:
        c = self.counters.get((key, slot))
        if c is None:
            if len(self.counters) >= MAX_COUNTERS:
                self.forget(now)
            c = self.counters[(key, slot)] = [0.0, 0, 0.0, 0.0, [], 0.0, 0]
        return c

    def own(self, key: str, slot: int, usd: float, tok: int, when: float, expire_s: int, now: float) -> None:
        """A settlement of this gateway that Redis took at `when` (its clock)."""
        c = self._get(key, slot, now)
        self.changed.add((key, slot))
        c[3] = max(c[3], now + expire_s)
        c[5] += usd
        c[6] += tok
        if when <= c[2]:
            return  # (in the sample already)
        mine = c[4]
        mine.append((when, usd, tok))
        if len(mine) > MAX_OWN:  # (kept whole: at worst a sample between them counts them again)
            w, u, t = mine.pop(0)
            w2, u2, t2 = mine[0]
            mine[0] = (w2, u + u2, t + t2)

    def sample(self, when: float, items: list[Any], now: float) -> None:
        """A look's flat list (member "key slot", settled usd, settled tokens, seconds to live) read at `when`."""
        for i in range(0, len(items) - 3, 4):
            key, _, slot = str(items[i]).rpartition(" ")
            if not key or not slot.lstrip("-").isdigit():
                continue
            try:  # (a field written from outside: a word, `inf`, below zero; one stopped every later look before
                # review32a, the watcher's `since` never moving past it)
                usd, tok = float(items[i + 1] or 0), int(float(items[i + 2] or 0))
            except (ValueError, OverflowError):
                continue
            if not 0 <= usd < math.inf or tok < 0:
                continue
            c = self._get(key, int(slot), now)
            if when <= c[2]:
                continue
            if (c[0], c[1]) != (usd, tok):
                self.changed.add((key, int(slot)))
            c[0], c[1], c[2] = usd, tok, when
            ttl = int(items[i + 3] or -1)
            if ttl > 0:
                c[3] = now + ttl
            c[4] = [m for m in c[4] if m[0] > when]

    def offers(self, now: float, only: set[tuple[str, int]] | None = None) -> list[str]:
        """One "key slot usd tokens own_usd own_tokens expire_s" per counter still open (of `only`, if given)."""
        self.forget(now)
        out = []
        counters = self.counters
        items = counters.items() if only is None else ((k, counters[k]) for k in only if k in counters)
        for (key, slot), c in items:
            usd = c[0] + sum(m[1] for m in c[4])
            tok = c[1] + sum(m[2] for m in c[4])
            if usd or tok or c[5] or c[6]:
                out.append(f"{key} {slot} {_num(usd)} {int(tok)} {_num(c[5])} {int(c[6])} {max(1, int(c[3] - now))}")
        return out

    def forget(self, now: float) -> None:
        """Drop the counters whose keys have expired in Redis by now, and past MAX_COUNTERS the ones that expire
        first."""
        counters = self.counters
        for k in [k for k, c in counters.items() if c[3] <= now]:
            del counters[k]
        if len(counters) >= MAX_COUNTERS:
            for k in sorted(counters, key=lambda k: counters[k][3])[: len(counters) - MAX_COUNTERS // 2]:
                del counters[k]


def _num(x: float) -> str:
    return "0" if x == 0 else repr(float(x))
