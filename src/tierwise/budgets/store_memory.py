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
    EPS,
    BudgetCheck,
    RateCheck,
    RateSettlement,
    Refusal,
    Settlement,
    budget_refusal,
    rate_refusal,
)

PRUNE_EVERY = 4096
# What `take` reserved in one budget: (bucket key, slot, usd, tokens, expire_s, model of a per-model budget)
# the slot's counter, and whether the window is rolling
Taken = tuple[str, int, float, int, int, "str | None", "list[float]", bool]
_ZERO = (0.0, 0.0)
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
        self.reservations: OrderedDict[str, tuple[float, list[tuple[Any, ...]]]] = OrderedDict()
        self.settled: OrderedDict[str, float] = OrderedDict()  # request id -> when the marker may go
        # rolling-window bucket -> [first slot, current slot, usd, tokens]: the window's total before
        # its current slot, as `take` reads it (kept equal to the slots' sum by every write)
        self.earlier: dict[str, list[Any]] = {}
        self._ops = 0

    # ------------------------------------------------------------------ reading

    def _used(self, key: str, slot: int, nslots: int) -> tuple[float, float, int | None]:
        """USD and tokens counted in a bucket's window ending at `slot`, and its oldest counted slot."""
        b = self.buckets.get(key)
        if not b:
            return 0.0, 0.0, None
        if nslots == 1:
            v = b.get(slot)
            return (v[0], v[1], slot) if v else (0.0, 0.0, None)
        lo = slot - nslots + 1
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
        b = self.buckets.get(key)
        if b is None:
            b = self.buckets[key] = {}
        v = b.get(slot)
        if v is None:
            b[slot] = [usd, tok]
        else:
            v[0] += usd
            v[1] += tok
        self.bucket_expiry[key] = now + expire_s
        self._earlier_add(key, slot, usd, tok)

    def _earlier_add(self, key: str, slot: int, usd: float, tok: float) -> None:
        """Keep a rolling window's sum of its earlier slots (see `_cells`) equal to those slots' total."""
        e = self.earlier.get(key)
        if e is not None and e[0] <= slot < e[1]:
            e[2] += usd
            e[3] += tok

    def _count(self, key: str, minute: int, tok: float) -> None:
        m = self.rates.get(key)
        if m is None:
            m = self.rates[key] = {}
        v = m.get(minute)
        if v is None:
            m[minute] = [1.0, float(tok)]
            for old in [k for k in m if k < minute - 1]:
                del m[old]
        else:
            v[0] += 1
            v[1] += tok

    def _rate_refusal(self, key: str, rpm: float, tpm: float, tok: float, minute: int,
                      frac: float) -> tuple[str, float, float] | None:
        m = self.rates.get(key)
        if not m:
            cur = prev = _ZERO
        else:
            cur, prev = m.get(minute, _ZERO), m.get(minute - 1, _ZERO)
        what = rate_refusal(rpm, tpm, tok, cur[0], prev[0], cur[1], prev[1], frac)
        if what is None:
            return None
        j = 0 if what == "requests" else 1
        return what, cur[j], prev[j]

    # ------------------------------------------------------------------ the two operations

    async def reserve(self, rid: str, budgets: list[BudgetCheck], rates: list[RateCheck], *, now: float,
                      minute: int, frac: float, deadline: float, fits: bool) -> Refusal | None:
        return self.reserve_now(rid, budgets, rates, now=now, minute=minute, frac=frac, deadline=deadline, fits=fits)

    def reserve_now(self, rid: str, budgets: list[BudgetCheck], rates: list[RateCheck], *, now: float,
                    minute: int, frac: float, deadline: float, fits: bool) -> Refusal | None:
        self._housekeeping(now)
        for i, c in enumerate(budgets):
            u, t, oldest = self._used(c.key, c.slot, c.nslots)
            what = budget_refusal(c.usd_limit, c.tok_limit, c.usd, c.tok, u, t, fits)
            if what is not None:
                return Refusal("budget", i, what, u if what == "usd" else t, oldest)  # type: ignore[arg-type]
        for i, r in enumerate(rates):
            refused = self._rate_refusal(r.key, r.rpm, r.tpm, r.tok, minute, frac)
            if refused is not None:
                what, cur, prev = refused
                return Refusal("rate", i, what, prev * (1 - frac) + cur, None, cur, prev)  # type: ignore[arg-type]
        for c in budgets:
            self._add(c.key, c.slot, c.usd, c.tok, c.expire_s, now)
        if budgets:
            self.reservations[rid] = (deadline, [(c.key, c.slot, c.usd, c.tok) for c in budgets])
        for r in rates:
            self._count(r.key, minute, r.tok)
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

    # ------------------------------------------------------------------ the same, for one node's own requests

    def _cells(self, plan: Any, now: float) -> tuple[float, list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
        """What `take` reads and adds to for a plan, worked out again at most once a second and at
        every slot or minute boundary: per budget its key, slot and (calendar windows) the slot's
        [usd, tokens] counter itself; per rate limit this minute's [requests, tokens] counter and
        the previous minute's. The counters are the store's own lists, so every path sees one state;
        a bucket is pruned only after `expire_s` (an hour or more) without writes, so a counter held
        here for a second is never one the store dropped."""
        until = now + 1.0
        budgets = []
        buckets, expiry = self.buckets, self.bucket_expiry
        for c in plan.static:
            b, w = c.budget, c.budget.window
            slot = w.slot(now)
            slots = buckets.get(c.key)
            if slots is None:
                slots = buckets[c.key] = {}
            counter = slots.get(slot)
            if counter is None:
                counter = slots[slot] = [0.0, 0.0]
            earlier = None
            if w.nslots == 1:
                until = min(until, w.resets_at(slot, None))
            else:  # the slots before the current one, summed once: `take` adds the current slot's counter
                until = min(until, (slot + 1) * w.slot_len)
                lo = slot - w.nslots + 1
                for old in [s for s in slots if s < lo]:
                    del slots[old]
                earlier = self.earlier.get(c.key)
                if earlier is None or earlier[1] != slot:
                    u = t = 0.0
                    for s, v in slots.items():
                        if s < slot:
                            u += v[0]
                            t += v[1]
                    earlier = self.earlier[c.key] = [lo, slot, u, t]
            expiry[c.key] = now + w.expire_s
            budgets.append((c.key, slot, counter, b.usd_limit, b.tok_limit, c.model, w.expire_s, earlier))
        minute = int(now // 60)
        rates = []
        for r in plan.rates:
            m = self.rates.get(r.key)
            if m is None:
                m = self.rates[r.key] = {}
            cur = m.get(minute)
            if cur is None:
                cur = m[minute] = [0.0, 0.0]
                for old in [k for k in m if k < minute - 1]:
                    del m[old]
            rates.append((cur, m.get(minute - 1, _ZERO), r.rpm, r.tpm))
        return min(until, (minute + 1) * 60.0), budgets, rates, minute

    def take(self, rid: str, plan: Any, est_in: int, out: int, n: int, worst: float, now: float, deadline: float,
             fits: bool) -> list[Taken] | None:
        """`reserve_now` for budgets known from the route and key alone (the plan's `StaticCharge`s and
        `RatePlan`s), without a check record per budget: the same tests and additions. What each
        budget reserved, or None when a limit refuses (then nothing changed: the caller asks
        `reserve_now` which limit, for its message). Settled with `give`, never `settle_now`: the
        caller holds the only handle on the reservation (and `give` marks it settled all the same)."""
        res = self.reservations
        if res and next(iter(res.values()))[0] <= now:
            self._housekeeping(now)
        else:
            self._ops += 1
            if self._ops % PRUNE_EVERY == 0:
                self.prune(now)
        cells = plan.cells
        if cells is None or now >= cells[0] or cells[4] is not self:
            cells = plan.cells = (*self._cells(plan, now), self)
        tok = (est_in + out) * n
        taken: list[Taken] = []
        for key, slot, counter, usd_limit, tok_limit, model, expire_s, earlier in cells[1]:
            usd = worst
            if model is not None:
                pin, pout = plan.remote[model]
                usd = (est_in * pin + out * pout) * n / 1_000_000
            u, t = counter
            if earlier is not None:
                u += earlier[2]
                t += earlier[3]
            if usd_limit >= 0 and (u + usd > usd_limit + EPS if fits else u >= usd_limit - EPS):
                return None
            if tok_limit >= 0 and (t + tok > tok_limit if fits else t >= tok_limit):
                return None
            taken.append((key, slot, usd, tok, expire_s, model, counter, earlier is not None))
        rates = cells[2]
        if rates:
            minute = cells[3]
            w = 1.0 - (now - minute * 60) / 60.0
            for cur, prev, rpm, tpm in rates:
                if rpm >= 0 and prev[0] * w + cur[0] + 1 > rpm:
                    return None
                est_t = prev[1] * w + cur[1]
                if tpm >= 0 and est_t > 0 and est_t + est_in > tpm:
                    return None
        for _, _, usd, tok, _, _, counter, _ in taken:  # each the current slot's: in no `earlier` sum
            counter[0] += usd
            counter[1] += tok
        if taken:
            res[rid] = (deadline, taken)
        for cur, *_ in rates:
            cur[0] += 1
            cur[1] += est_in
        return taken

    def give(self, rid: str, taken: list[Taken], spent: tuple[float, float], per_model: dict[str, list[float]] | None,
             rate_cells: list[tuple[Any, ...]], tok_delta: int, now: float, settled_ttl: float) -> None:
        """Settle a `take`: each budget's reservation replaced by what was spent (per model for a
        per-model budget), and the token counts of the rate limits' minute of admission (`rate_cells`:
        the `_cells` of the take) corrected by `tok_delta`. Marked settled like `settle_now`, which
        then refuses the same request id. (A counter the store dropped meanwhile, a minute that is
        no longer counted, takes the correction without effect, as `settle_now` skips it.)"""
        settled = self.settled
        settled[rid] = now + settled_ttl
        if len(settled) > MAX_SETTLED:
            settled.popitem(last=False)
        live = self.reservations.pop(rid, None) is not None  # else swept: its reservation was given back
        for key, slot, r_usd, r_tok, _, model, counter, rolling in taken:
            usd, tok = spent if model is None or per_model is None else per_model.get(model, (0.0, 0.0))
            du = usd - r_usd if live else usd
            dt = int(tok) - r_tok if live else int(tok)
            if du or dt:
                counter[0] += du
                counter[1] += dt
                if rolling:  # the slot may be an earlier one by now (`_earlier_add`, inline)
                    e = self.earlier.get(key)
                    if e is not None and e[0] <= slot < e[1]:
                        e[2] += du
                        e[3] += dt
        if tok_delta:
            for cur, *_ in rate_cells:
                cur[1] += tok_delta

    # ------------------------------------------------------------------ expiry

    def _housekeeping(self, now: float) -> None:
        res = self.reservations
        while res:
            rid = next(iter(res))
            if res[rid][0] > now:
                break
            for key, slot, usd, tok, *_ in res.pop(rid)[1]:  # a reservation nobody settled (a bug, a lost task): given back
                b = self.buckets.get(key)
                v = b.get(slot) if b else None
                if v is not None:
                    v[0] -= usd
                    v[1] -= tok
                    self._earlier_add(key, slot, -usd, -tok)
        self._ops += 1
        if self._ops % PRUNE_EVERY == 0:
            self.prune(now)

    def prune(self, now: float) -> None:
        for k in [k for k, exp in self.bucket_expiry.items() if exp <= now]:
            self.buckets.pop(k, None)
            self.earlier.pop(k, None)
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
