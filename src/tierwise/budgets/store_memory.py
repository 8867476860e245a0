"""The in-process store: a single gateway's budgets and rate limits, in dicts.

Everything runs on the event loop's thread between two awaits, so a reservation checks every
budget and adds to them atomically without a lock. Memory is bounded by time: a bucket's
slots older than its window are dropped when it is touched, and every `PRUNE_S` seconds the
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

PRUNE_S = 5.0  # seconds between two sweeps of the buckets nobody wrote within their window
_ZERO: tuple[float, ...] | list[float] = (0.0, 0.0)
_INF = float("inf")
_NOTHING_EARLIER: tuple[Any, ...] | list[Any] = (0, 0, 0.0, 0.0)  # the `earlier` of a calendar budget: its window is its one slot
# What `take` works from for one plan, until `until` (at most a second, and no slot or minute
# boundary in between): (until, the store, the counters of its budgets' current slots, per budget
# (counter, earlier, usd limit, token limit) with `earlier` = [first slot, current slot, usd, tokens]
# of a rolling window's earlier slots, per per-model budget the same + (input price, output price,
# model), per rate limit (this minute's [requests, tokens], the previous minute's, rpm, tpm), the
# rate limits' current counters, the minute, per budget (key, slot, counter, rolling), fits, the plan,
# when the first of its budgets' current slots ends).
Cells = tuple[Any, ...]
# A request `take` admitted: (deadline, its Cells, usd and tokens reserved per budget, the per-model
# budgets' usd or None, estimated input tokens, the lease it was admitted under or None)
Taken = tuple[float, Cells, float, int, "list[float] | None", int, "Lease | None"]


class Lease:
    """One plan's hold on the store (see `MemoryStore.take`): until `until`, its requests' additions
    go to `acc` (usd and tokens in every budget, requests and tokens in every rate limit), which
    `sync` adds to the counters of `cells` before anything reads them. `room` is what `acc` may reach
    before some limit could refuse: worked out from the counters when the lease began, less what was
    added outside the lease since (each addition taken whole off every kind it could touch)."""

    __slots__ = ("plan", "cells", "until", "fits", "room", "acc", "synced")

    def __init__(self, plan: Any, cells: Cells, until: float, fits: bool, room: list[float]) -> None:
        self.plan = plan
        self.cells = cells
        self.until = until
        self.fits = fits
        self.room = room
        self.acc = [0.0, 0.0, 0.0, 0.0]
        self.synced = [0.0, 0.0, 0.0, 0.0]

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
        self.reservations: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self.settled: OrderedDict[str, float] = OrderedDict()  # request id -> when the marker may go
        # rolling-window bucket -> [first slot, current slot, usd, tokens]: the window's total before
        # its current slot, as `take` reads it (kept equal to the slots' sum by every write)
        self.earlier: dict[str, list[Any]] = {}
        self._next_prune = 0.0
        self.lease: Lease | None = None
        self._no_lease_until = 0.0
        self._due = 0.0  # when `_chores` next has something to do: at or before the oldest reservation's deadline

    # ------------------------------------------------------------------ reading

    def _used(self, key: str, slot: int, nslots: int) -> tuple[float, float, int | None]:
        """USD and tokens counted in a bucket's window ending at `slot`, and its oldest counted slot."""
        self.sync()
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
        if now >= self._due:
            self._chores(now)
        self.sync()
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
            if deadline < self._due:
                self._due = deadline
        for r in rates:
            self._count(r.key, minute, r.tok)
        if self.lease is not None:  # the lease's headroom did not count these
            self._shrink(max((c.usd for c in budgets), default=0.0), max((c.tok for c in budgets), default=0),
                         1.0 if rates else 0.0, max((r.tok for r in rates), default=0))
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
        grew = [0.0, 0.0, 0.0, 0.0]  # the largest addition to one counter, per kind (for the lease's headroom)
        for s in budgets:
            du = s.usd - s.reserved_usd if live else s.usd
            dt = s.tok - s.reserved_tok if live else s.tok
            if du or dt:
                self._add(s.key, s.slot, du, dt, s.expire_s, now)
                grew[0], grew[1] = max(grew[0], du), max(grew[1], dt)
        for r in rates:
            v = self.rates.get(r.key, {}).get(r.minute)
            if v is not None:
                v[1] += r.tok
                grew[3] = max(grew[3], r.tok)
        if self.lease is not None:
            self._shrink(*grew)
        if now >= self._due:
            self._chores(now)
        return True

    # ------------------------------------------------------------------ the same, for one node's own requests

    def _cells(self, plan: Any, now: float, fits: bool) -> Cells:
        """What `take` reads and adds to for a plan, worked out again at most once a second and at
        every slot or minute boundary (see `Cells`). The counters are the store's own lists, so
        every path sees one state; a bucket is pruned only after `expire_s` (an hour or more)
        without writes, so a counter held here for a second is never one the store dropped."""
        self.sync()
        turns = _INF  # when the first of these budgets' slots ends
        counters: list[list[float]] = []
        budgets: list[tuple[Any, ...]] = []
        models: list[tuple[Any, ...]] = []
        meta: list[tuple[str, int, list[float], bool]] = []
        model_meta: list[tuple[str, int, list[float], bool]] = []
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
            earlier = _NOTHING_EARLIER
            if w.nslots == 1:
                turns = min(turns, w.resets_at(slot, None))
            else:  # the slots before the current one, summed once: `take` adds the current slot's counter
                turns = min(turns, (slot + 1) * w.slot_len)
                lo = slot - w.nslots + 1
                for old in [s for s in slots if s < lo]:
                    del slots[old]
                earlier = self.earlier.get(c.key)  # type: ignore[assignment]
                if earlier is None or earlier[1] != slot:
                    u = t = 0.0
                    for s, v in slots.items():
                        if s < slot:
                            u += v[0]
                            t += v[1]
                    earlier = self.earlier[c.key] = [lo, slot, u, t]
            expiry[c.key] = now + w.expire_s
            # The limits as `take` compares them: no limit never refuses; the EPS of `budget_refusal` folded in.
            lu = _INF if b.usd_limit < 0 else (b.usd_limit + EPS if fits else b.usd_limit - EPS)
            lt = _INF if b.tok_limit < 0 else b.tok_limit
            where = (c.key, slot, counter, w.nslots > 1)
            if c.model is None:
                counters.append(counter)
                budgets.append((counter, earlier, lu, lt))
                meta.append(where)
            else:
                pin, pout = plan.remote[c.model]
                models.append((counter, earlier, lu, lt, pin, pout, c.model))
                model_meta.append(where)
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
            rates.append((cur, m.get(minute - 1, _ZERO), _INF if r.rpm < 0 else r.rpm, _INF if r.tpm < 0 else r.tpm))
        return (min(now + 1.0, turns, (minute + 1) * 60.0), self, counters, budgets, models, rates, [r[0] for r in rates],
                minute, meta + model_meta, fits, plan, turns)

    def take(self, rid: str, plan: Any, est_in: int, out: int, n: int, worst: float, now: float, deadline: float,
             fits: bool, fee: float = 0.0) -> Taken | None:
        """`reserve_now` for budgets known from the route and key alone (the plan's `StaticCharge`s and
        `RatePlan`s), without a check record per budget: the same decisions and additions. The request's
        handle (`Taken`), or None when a limit refuses (then nothing changed: the caller asks
        `reserve_now` which limit, for its message). Settled with `give`, never `settle_now`: the
        caller holds the only handle on the reservation (and `give` marks it settled all the same).

        While one plan has the store to itself (one key on one route: the common case of one node),
        it holds the `Lease`: its requests add to four sums instead of every counter, and are admitted
        by four comparisons against headroom worked out when the lease began, which no limit can
        refuse within. A request the headroom does not clearly cover goes the exact way below."""
        if now >= self._due:
            self._chores(now)
        lease = self.lease
        if lease is None or lease.plan is not plan or now >= lease.until or lease.fits is not fits:
            lease = self._lease_for(plan, now, fits)
        if lease is not None:
            acc, room = lease.acc, lease.room
            tok = (est_in + out) * n
            if (acc[0] + worst < room[0] and acc[1] + tok < room[1]) if fits else (acc[0] < room[0] and acc[1] < room[1]):
                if acc[2] < room[2] and acc[3] + tok < room[3]:
                    acc[0] += worst
                    acc[1] += tok
                    acc[2] += 1.0
                    acc[3] += tok
                    held = (deadline, lease.cells, worst, tok, None, est_in, lease)
                    if lease.cells[2]:
                        self.reservations[rid] = held
                        if deadline < self._due:
                            self._due = deadline
                    return held
            self._end_lease()  # near a limit: exact, and no lease for a second
            self._no_lease_until = now + 1.0
        return self._take_exact(rid, plan, est_in, out, n, worst, now, deadline, fits, fee)

    def _lease_for(self, plan: Any, now: float, fits: bool) -> Lease | None:
        """A new lease for `plan`, or None when another plan holds an unexpired one, when the last
        one ended near a limit less than a second ago, or when the plan has per-model budgets."""
        held = self.lease
        if held is not None and now < held.until and held.plan is not plan:
            return None
        self._end_lease()
        if now < self._no_lease_until or any(c.model is not None for c in plan.static):
            return None
        cells = plan.cells = self._cells(plan, now, fits)
        _, _, _, budgets, _, rates, _, minute, _, _, _, turns = cells
        room = [_INF, _INF, _INF, _INF]
        for c, e, lu, lt in budgets:
            room[0] = min(room[0], lu - (c[0] + e[2]))
            room[1] = min(room[1], lt - (c[1] + e[3]))
        w = 1.0 - (now - minute * 60) / 60.0  # (the previous minute only weighs less as the minute goes on)
        for cur, prev, rpm, tpm in rates:
            room[2] = min(room[2], rpm - prev[0] * w - cur[0] - 1.0)
            room[3] = min(room[3], tpm - prev[1] * w - cur[1])
        for i, r in enumerate(room):  # a margin for the rounding of float sums taken in another order
            if r != _INF:
                room[i] = r - 1e-9 * (1.0 + abs(r))
        # Until a slot or the minute turns: the headroom only grows meanwhile, but for what `_shrink` takes off.
        lease = self.lease = Lease(plan, cells, min(turns, (minute + 1) * 60.0), fits, room)
        return lease

    def _end_lease(self) -> None:
        self.sync()
        self.lease = None

    def sync(self) -> None:
        """Bring the counters up to date with what the lease's requests added to its sums."""
        lease = self.lease
        if lease is None:
            return
        acc, done = lease.acc, lease.synced
        du, dt, dr, drt = acc[0] - done[0], acc[1] - done[1], acc[2] - done[2], acc[3] - done[3]
        if du or dt:
            for c in lease.cells[2]:
                c[0] += du
                c[1] += dt
        if dr or drt:
            for cur in lease.cells[6]:
                cur[0] += dr
                cur[1] += drt
        lease.synced = acc[:]

    def _shrink(self, usd: float, tok: float, req: float, rtok: float) -> None:
        """Take additions made outside the lease (each at most this much to any one counter) off its headroom."""
        room = self.lease.room  # type: ignore[union-attr]
        room[0] -= usd
        room[1] -= tok
        room[2] -= req
        room[3] -= rtok

    def _take_exact(self, rid: str, plan: Any, est_in: int, out: int, n: int, worst: float, now: float,
                    deadline: float, fits: bool, fee: float = 0.0) -> Taken | None:
        """`take` by the plan's counters themselves (see `Cells`)."""
        self.sync()
        cells = plan.cells
        if cells is None or now >= cells[0] or cells[1] is not self or cells[9] is not fits:
            cells = plan.cells = self._cells(plan, now, fits)
        _, _, counters, budgets, models, rates, curs, minute, _, _, _, _ = cells
        tok = (est_in + out) * n
        if fits:
            for c, e, lu, lt in budgets:
                if c[0] + e[2] + worst > lu or c[1] + e[3] + tok > lt:
                    return None
        else:
            for c, e, lu, lt in budgets:
                if c[0] + e[2] >= lu or c[1] + e[3] >= lt:
                    return None
        model_usd = None
        if models:  # per-model budgets: each reserves at its model's own prices
            model_usd = []
            for c, e, lu, lt, pin, pout, _ in models:
                usd = (est_in * pin + out * pout) * n / 1_000_000 + fee  # (web searches': none before review31c)
                u, t = c[0] + e[2], c[1] + e[3]
                if (u + usd > lu or t + tok > lt) if fits else (u >= lu or t >= lt):
                    return None
                model_usd.append(usd)
        if rates:
            w = 1.0 - (now - minute * 60) / 60.0
            for cur, prev, rpm, tpm in rates:
                if prev[0] * w + cur[0] + 1 > rpm:
                    return None
                t = prev[1] * w + cur[1]
                if t > 0 and t + tok > tpm:
                    return None
            for cur in curs:
                cur[0] += 1
                cur[1] += tok
        for c in counters:  # each the current slot's: in no `earlier` sum
            c[0] += worst
            c[1] += tok
        if model_usd is not None:
            for m, usd in zip(models, model_usd, strict=False):
                c = m[0]
                c[0] += usd
                c[1] += tok
        held = (deadline, cells, worst, tok, model_usd, est_in, None)
        if counters or models:
            self.reservations[rid] = held
            if deadline < self._due:
                self._due = deadline
        if self.lease is not None:  # another plan's: its headroom did not count these
            self._shrink(max(worst, *model_usd) if model_usd else worst, tok, 1.0 if rates else 0.0,
                         tok if rates else 0)
        return held

    def give(self, rid: str, held: Taken, spent: tuple[float, float], per_model: dict[str, list[float]] | None,
             tok_delta: int, now: float, settled_ttl: float) -> None:
        """Settle a `take`: each budget's reservation replaced by what was spent (per model for a
        per-model budget), and the token counts of the rate limits' minute of admission corrected by
        `tok_delta`. Marked settled like `settle_now`, which then refuses the same request id. (A
        counter the store dropped meanwhile, a minute that is no longer counted, takes the correction
        without effect, as `settle_now` skips it.)"""
        settled = self.settled
        settled[rid] = now + settled_ttl
        if len(settled) > MAX_SETTLED:
            settled.popitem(last=False)
        live = self.reservations.pop(rid, None) is not None  # else swept: its reservation was given back
        _, cells, r_usd, r_tok, model_usd, _, lease = held
        if lease is not None and lease is self.lease:  # into the lease's sums, as the reservation went
            usd, tok = spent
            acc = lease.acc
            acc[0] += usd - r_usd if live else usd
            acc[1] += int(tok) - r_tok if live else int(tok)
            acc[3] += tok_delta
            if now >= cells[11]:  # (the lease outlived: see below)
                self.sync()
                self._lapsed(cells, spent, per_model, now)
            return
        counters, models = cells[2], cells[4]
        grew = [0.0, 0.0, 0.0, max(0, tok_delta)]  # for the headroom of a lease taken since
        if counters:
            usd, tok = spent
            du = usd - r_usd if live else usd
            dt = int(tok) - r_tok if live else int(tok)
            grew[0], grew[1] = du, dt
            if du or dt:
                if now < cells[11]:  # the same slots as at admission: none of them is an earlier one yet
                    for c in counters:
                        c[0] += du
                        c[1] += dt
                else:
                    for where in cells[8][:len(counters)]:
                        self._adjust(where, du, dt)
        if models:
            for where, (*_, model), r in zip(cells[8][len(counters):], models, model_usd, strict=False):  # type: ignore[arg-type]
                usd, tok = spent if per_model is None else per_model.get(model, (0.0, 0.0))
                du = usd - r if live else usd
                dt = int(tok) - r_tok if live else int(tok)
                grew[0], grew[1] = max(grew[0], du), max(grew[1], dt)
                if du or dt:
                    self._adjust(where, du, dt)
        if tok_delta:
            for cur in cells[6]:
                cur[1] += tok_delta
        if now >= cells[11]:  # (a rolling window's slot may have left it while the request ran)
            lu, lt = self._lapsed(cells, spent, per_model, now)
            grew[0], grew[1] = max(grew[0], lu), max(grew[1], lt)
        if self.lease is not None:
            self._shrink(max(0.0, grew[0]), max(0.0, grew[1]), 0.0, grew[3])

    def _lapsed(self, cells: Any, spent: tuple[float, float], per_model: dict[str, list[float]] | None,
                now: float) -> tuple[float, float]:
        """A request that outlasted a rolling window: its admission's slot is no longer counted, and what it spent,
        settled there, was counted nowhere (before session 30, costs2: a client whose streams outlast the window spent
        without limit). Counted in the current slot. The most added to one counter."""
        windows = {c.key: c.budget.window for c in cells[10].static}
        n = len(cells[2])
        most = [0.0, 0.0]
        for i, (key, slot, _, rolling) in enumerate(cells[8]):
            w = windows.get(key) if rolling else None
            if w is None or w.slot(now) - slot < w.nslots:
                continue
            usd, tok = spent if i < n or per_model is None else per_model.get(cells[4][i - n][-1], (0.0, 0.0))
            if usd or tok:
                self._add(key, w.slot(now), usd, int(tok), w.expire_s, now)
                most[0], most[1] = max(most[0], usd), max(most[1], tok)
        return most[0], most[1]

    def _adjust(self, where: tuple[str, int, list[float], bool], du: float, dt: float) -> None:
        """Add to one budget's counter of a `take`, and to its rolling window's sum of earlier slots
        when the slot has become one of them (`_earlier_add`)."""
        key, slot, counter, rolling = where
        counter[0] += du
        counter[1] += dt
        if rolling:
            self._earlier_add(key, slot, du, dt)

    # ------------------------------------------------------------------ expiry

    def _chores(self, now: float) -> None:
        """Give back the reservations nobody settled by their deadline (a bug, a lost task), prune
        every `PRUNE_S`, and note when this is next due."""
        res = self.reservations
        while res:
            rid = next(iter(res))
            v = res[rid]
            if v[0] > now:
                break
            del res[rid]
            if len(v) == 2:  # `reserve_now`'s: (deadline, [(key, slot, usd, tok), ...])
                for key, slot, usd, tok in v[1]:
                    self._release(key, slot, usd, tok)
            else:  # `take`'s handle
                _, cells, usd, tok, model_usd, _, _ = v
                amounts = [usd] * len(cells[2]) + (model_usd or [])
                for (key, slot, _, _), u in zip(cells[8], amounts, strict=False):
                    self._release(key, slot, u, tok)
        if now >= self._next_prune:
            self.prune(now)
            self._next_prune = now + PRUNE_S
        self._due = min(next(iter(res.values()))[0] if res else _INF, self._next_prune)

    def _release(self, key: str, slot: int, usd: float, tok: float) -> None:
        b = self.buckets.get(key)
        v = b.get(slot) if b else None
        if v is not None:
            v[0] -= usd
            v[1] -= tok
            self._earlier_add(key, slot, -usd, -tok)

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

    async def buckets_for(self, prefix: str, exact: bool = False) -> dict[str, dict[str, float]]:
        """Every bucket under `prefix` (only the bucket `prefix` when `exact`) as its raw fields
        (`u<slot>`/`t<slot>`), like the Redis store."""
        self.sync()
        out: dict[str, dict[str, float]] = {}
        for k, slots in self.buckets.items():
            if k == prefix if exact else k.startswith(prefix):
                f: dict[str, float] = {}
                for s, v in slots.items():
                    f[f"u{s}"] = v[0]
                    f[f"t{s}"] = v[1]
                out[k] = f
        return out

    async def in_flight(self, key: str, slot: int, nslots: int) -> tuple[float, float]:
        """USD and tokens the live reservations hold in a bucket's window ending at `slot` (refusals.py)."""
        u = t = 0.0
        for v in self.reservations.values():
            if len(v) == 2:  # `reserve_now`'s
                parts = [(k, s, usd, tok) for k, s, usd, tok in v[1]]
            else:  # `take`'s handle: its amount in each of its counters, as `_chores` gives them back
                amounts = [v[2]] * len(v[1][2]) + (v[4] or [])
                parts = [(k, s, a, v[3]) for (k, s, _, _), a in zip(v[1][8], amounts, strict=False)]
            for k, s, usd, tok in parts:
                if k == key and slot - nslots < s <= slot:
                    u, t = u + usd, t + tok
        return u, t

    async def reservations_count(self) -> int:
        return len(self.reservations)

    async def close(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        return {"backend": "memory", "buckets": len(self.buckets), "reservations": len(self.reservations)}
