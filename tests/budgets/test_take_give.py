"""The single-node fast path (`MemoryStore.take`/`give`, used for budgets known from the route and
key) decides and counts exactly as the check-record path (`reserve_now`/`settle_now`): the same
requests, at the same instants, across day, rolling-window and rate-limit boundaries, with
settlements that land after a slot has turned and reservations left to expire, are admitted or
refused alike and leave the same totals in every bucket. That holds for a plan alone (which takes
the store's lease: its requests go to four sums and are admitted against headroom), for two plans
that share limits and take turns at random (one holds the lease, the other's additions come off
its headroom), and for plans with a per-model budget (never leased)."""

from __future__ import annotations

import random

import pytest

from tierwise.budgets.checks import BudgetCheck, RateCheck, RateSettlement, Settlement
from tierwise.budgets.config import BudgetLimit, RateLimit
from tierwise.budgets.plan import RatePlan, RoutePlan, StaticCharge, compile_budget
from tierwise.budgets.store_memory import MemoryStore

T0 = 1_790_000_000.0
PRICE = (3.0, 15.0)  # USD per million tokens, input and output


def plan(per_model: bool = True, key: str = "*") -> RoutePlan:
    """Budgets: a day's USD (global), rolling tokens (per `key`) and, with `per_model`, a per-model
    rolling USD budget; rate limits: requests per minute (per `key`) and tokens per minute (global)."""
    p = RoutePlan({"m": PRICE}, PRICE[0], PRICE[1], None)
    specs = [BudgetLimit(name="day", usd=1.0, window="day"),
             BudgetLimit(name="roll", tokens=150_000, window={"rolling": "2m"})]
    if per_model:
        specs.append(BudgetLimit(name="per-model", per="model", usd=0.3, window={"rolling": "1m"}))
    for spec in specs:
        b = compile_budget(spec)
        value = key if spec.name == "roll" else "*"
        p.static.append(StaticCharge(b, f"b:{b.name}:{value}", value, "m" if spec.per == "model" else None))
    p.per_model = per_model
    for spec, value in ((RateLimit(name="rpm", requests_per_minute=40), key),
                        (RateLimit(name="tpm", tokens_per_minute=60_000), "*")):
        p.rates.append(RatePlan(spec, f"rl:{spec.name}:{value}", value, float(spec.requests_per_minute or -1),
                                float(spec.tokens_per_minute or -1)))
    return p


def totals(s: MemoryStore, plans: list[RoutePlan], now: float) -> dict[str, tuple[float, ...]]:
    out: dict[str, tuple[float, ...]] = {}
    s.sync()
    for p in plans:
        for c in p.static:
            w = c.budget.window
            u, t, _ = s._used(c.key, w.slot(now), w.nslots)
            out[c.key] = (round(u, 12), round(t, 6))
    minute = int(now // 60)
    for key, minutes in s.rates.items():  # what a rate limit reads: this minute's counts and the previous one's
        counts = tuple(x for m in (minute - 1, minute) for x in minutes.get(m, (0.0, 0.0)))
        if any(counts):  # (a limit with nothing counted reads as one the store has pruned)
            out[key] = counts
    return out


PLANS = {
    "per-model budget": lambda: [plan()],
    "one plan (leased)": lambda: [plan(per_model=False)],
    "two plans sharing limits": lambda: [plan(per_model=False, key="a"), plan(per_model=False, key="b")],
    "leased and per-model": lambda: [plan(per_model=False, key="a"), plan(per_model=True, key="b")],
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("plans", list(PLANS))
def test_take_and_give_decide_and_count_as_reserve_and_settle(seed, plans):
    rnd = random.Random(seed)
    fast, slow, ps = MemoryStore(), MemoryStore(), PLANS[plans]()
    pending: list[tuple[float, str, object, object]] = []  # (settle at, rid, fast handle, slow handle)
    now, admitted, refused, leased = T0, 0, 0, 0
    for i in range(600):
        now += rnd.uniform(0.0, 1.5)
        # settlements due by now (some after their slot or minute turned; a few never: they expire)
        for due in [x for x in pending if x[0] <= now]:
            pending.remove(due)
            _, rid, (taken, est_in), (checks, rates) = due  # type: ignore[misc]
            used_in, used_out = rnd.randint(0, est_in), rnd.randint(0, 800)
            usd = (used_in * PRICE[0] + used_out * PRICE[1]) / 1e6
            tok = used_in + used_out
            fast.give(rid, taken, (usd, tok), {"m": [usd, tok]}, tok - taken[3], now, 600)
            slow.settle_now(rid, [Settlement(c.key, c.slot, c.usd, c.tok, usd, tok, c.expire_s) for c in checks],
                            [RateSettlement(r.key, int(c_min), tok - r.tok) for r, c_min in rates],
                            now=now, settled_ttl=600)
        p = rnd.choice(ps)
        est_in, out = rnd.randint(10, 2000), rnd.choice([200, 1000, 4000])
        worst = (est_in * PRICE[0] + out * PRICE[1]) / 1e6
        rid = f"r{i}"
        taken = fast.take(rid, p, est_in, out, 1, worst, now, now + 30, False)
        checks = [BudgetCheck(c.key, c.budget.window.slot(now), c.budget.window.nslots, c.budget.usd_limit,
                              c.budget.tok_limit, worst, est_in + out,
                              c.budget.window.expire_s) for c in p.static]
        rates = [RateCheck(r.key, r.rpm, r.tpm, est_in + out) for r in p.rates]
        minute = int(now // 60)
        refusal = slow.reserve_now(rid, checks, rates, now=now, minute=minute, frac=(now - minute * 60) / 60,
                                   deadline=now + 30, fits=False)
        assert (taken is None) == (refusal is not None), (i, refusal)
        if taken is None:
            refused += 1
        else:
            admitted += 1
            leased += taken[-1] is not None
            if rnd.random() < 0.9:  # the rest are never settled: their reservations expire
                pending.append((now + rnd.uniform(0.0, 8.0), rid, (taken, est_in),
                                (checks, [(r, minute) for r in rates])))
        if i % 3 == 0 or not leased:  # (reading syncs the lease's sums; not every step, so they pile up too)
            a, b = totals(fast, ps, now), totals(slow, ps, now)
            assert a.keys() == b.keys(), i
            for k in a:
                assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-9), (i, k)
    assert admitted > 100 and refused > 100  # both ways, many times
    if plans != "per-model budget":
        assert leased > 50  # the lease took part
