"""The in-process store: a single gateway's budgets and rate limits, in dicts.

Everything runs on the event loop's thread between two awaits, so a reservation checks every
budget and adds to them atomically without a lock. Memory is bounded by time: a bucket's
slots older than its window are dropped when it is touched, and every `PRUNE_EVERY` calls the
buckets no request touched within their window go (a client inventing session ids creates
buckets that live at most one window).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from tierwise.budgets.checks import (
    BudgetCheck,
    RateCheck,
    RateSettlement,
    Refusal,
    Settlement,
    budget_refusal,
    rate_refusal,
)

PRUNE_EVERY = 4096
MAX_SETTLED = 100_000  # settlement markers kept (a repeated settlement comes seconds after the first)


class MemoryStore:
    shared = False

    def __init__(self) -> None:
        # bucket key -> slot -> [usd, tokens]; expiry time of each bucket (its last write + expire_s)
        self.buckets: dict[str, dict[int, list[float]]] = {}
        self.bucket_expiry: dict[str, float] = {}
        self.rates: dict[str, dict[int, list[float]]] = {}  # key -> minute -> [requests, tokens]
        # In admission order, so in deadline order (one TTL for all): expiry looks at the oldest only.
        # (OrderedDicts: popping their oldest entry stays O(1) however many went before; a dict's does not.)
        self.reservations: OrderedDict[str, tuple[float, list[BudgetCheck]]] = OrderedDict()
        self.settled: OrderedDict[str, float] = OrderedDict()  # request id -> when the marker may go
        self._ops = 0

    # ------------------------------------------------------------------ reading

    def _used(self, c: BudgetCheck) -> tuple[float, float, int | None]:
        b = self.buckets.get(c.key)
        if not b:
            return 0.0, 0.0, None
        if c.nslots == 1:
            v = b.get(c.slot)
            return (v[0], v[1], c.slot) if v else (0.0, 0.0, None)
        lo = c.slot - c.nslots + 1
        u = t = 0.0
        oldest = None
        for s in [s for s in b if s < lo]:
            del b[s]
        for s, v in b.items():
            u += v[0]
            t += v[1]
            if (v[0] > 0 or v[1] > 0) and (oldest is None or s < oldest):
                oldest = s
        return u, t, oldest

    def _add(self, key: str, slot: int, usd: float, tok: float, expire_s: int, now: float) -> None:
        b = self.buckets.setdefault(key, {})
        v = b.get(slot)
        if v is None:
            b[slot] = [usd, tok]
        else:
            v[0] += usd
            v[1] += tok
        self.bucket_expiry[key] = now + expire_s

    # ------------------------------------------------------------------ the two operations

    async def reserve(self, rid: str, budgets: list[BudgetCheck], rates: list[RateCheck], *, now: float,
                      minute: int, frac: float, deadline: float, fits: bool) -> Refusal | None:
        return self.reserve_now(rid, budgets, rates, now=now, minute=minute, frac=frac, deadline=deadline, fits=fits)

    def reserve_now(self, rid: str, budgets: list[BudgetCheck], rates: list[RateCheck], *, now: float,
                    minute: int, frac: float, deadline: float, fits: bool) -> Refusal | None:
        self._housekeeping(now)
        buckets = self.buckets
        for i, c in enumerate(budgets):
            if c.nslots == 1:  # calendar windows: one slot, read directly
                v = buckets[c.key].get(c.slot) if c.key in buckets else None
                u, t, oldest = (v[0], v[1], c.slot) if v else (0.0, 0.0, None)
            else:
                u, t, oldest = self._used(c)
            what = budget_refusal(c, u, t, fits)
            if what is not None:
                return Refusal("budget", i, what, u if what == "usd" else t, oldest)  # type: ignore[arg-type]
        for i, r in enumerate(rates):
            m = self.rates.get(r.key, {})
            cur, prev = m.get(minute, (0.0, 0.0)), m.get(minute - 1, (0.0, 0.0))
            what = rate_refusal(r, cur[0], prev[0], cur[1], prev[1], frac)
            if what is not None:
                j = 0 if what == "requests" else 1
                return Refusal("rate", i, what, prev[j] * (1 - frac) + cur[j], None, cur[j], prev[j])  # type: ignore[arg-type]
        for c in budgets:
            self._add(c.key, c.slot, c.usd, c.tok, c.expire_s, now)
        if budgets:
            self.reservations[rid] = (deadline, budgets)
        for r in rates:
            m = self.rates.setdefault(r.key, {})
            v = m.get(minute)
            if v is None:
                m[minute] = [1.0, float(r.tok)]
                for old in [k for k in m if k < minute - 1]:
                    del m[old]
            else:
                v[0] += 1
                v[1] += r.tok
        return None

    async def settle(self, rid: str, budgets: list[Settlement], rates: list[RateSettlement], *, now: float,
                     settled_ttl: float) -> bool:
        return self.settle_now(rid, budgets, rates, now=now, settled_ttl=settled_ttl)

    def settle_now(self, rid: str, budgets: list[Settlement], rates: list[RateSettlement], *, now: float,
                   settled_ttl: float) -> bool:
        """Replace the reservation with the real cost; False (and nothing changes) when `rid` was settled."""
        if rid in self.settled:
            return False
        self.settled[rid] = now + settled_ttl
        if len(self.settled) > MAX_SETTLED:
            self.settled.popitem(last=False)
        live = self.reservations.pop(rid, None) is not None  # else swept: its reservation was given back
        for s in budgets:
            du = s.usd - s.reserved_usd if live else s.usd
            dt = s.tok - s.reserved_tok if live else s.tok
            if du or dt:
                self._add(s.key, s.slot, du, dt, s.expire_s, now)
        for r in rates:
            v = self.rates.get(r.key, {}).get(r.minute)
            if v is not None:
                v[1] += r.tok
        self._housekeeping(now)
        return True

    # ------------------------------------------------------------------ expiry

    def _housekeeping(self, now: float) -> None:
        res = self.reservations
        while res:
            rid = next(iter(res))
            if res[rid][0] > now:
                break
            for c in res.pop(rid)[1]:  # a reservation nobody settled (a bug, a lost task): given back
                b = self.buckets.get(c.key)
                v = b.get(c.slot) if b else None
                if v is not None:
                    v[0] -= c.usd
                    v[1] -= c.tok
        self._ops += 1
        if self._ops % PRUNE_EVERY == 0:
            self.prune(now)

    def prune(self, now: float) -> None:
        for k in [k for k, exp in self.bucket_expiry.items() if exp <= now]:
            self.buckets.pop(k, None)
            del self.bucket_expiry[k]
        for k in [k for k, m in self.rates.items() if not m or max(m) * 60 < now - 120]:
            del self.rates[k]
        settled = self.settled  # in insertion order, so in expiry order
        while settled and next(iter(settled.values())) <= now:
            settled.popitem(last=False)

    # ------------------------------------------------------------------ status and lifecycle

    async def buckets_for(self, prefix: str) -> dict[str, dict[str, float]]:
        """Every bucket under `prefix` as its raw fields (`u<slot>`/`t<slot>`), like the Redis store."""
        out: dict[str, dict[str, float]] = {}
        for k, slots in self.buckets.items():
            if k.startswith(prefix):
                f: dict[str, float] = {}
                for s, v in slots.items():
                    f[f"u{s}"] = v[0]
                    f[f"t{s}"] = v[1]
                out[k] = f
        return out

    async def reservations_count(self) -> int:
        return len(self.reservations)

    async def close(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        return {"backend": "memory", "buckets": len(self.buckets), "reservations": len(self.reservations)}
