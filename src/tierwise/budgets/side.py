"""Rate limits for the side endpoints: `POST /v1/messages/count_tokens`, `POST /v1/responses/input_tokens`
and `POST /v1/embeddings`.

They run no policy and spend no budget (Anthropic does not bill token counting; an embeddings call is a
proxy), but each is a request a client can repeat as fast as it likes: a key held to two chat requests a
minute sent as many count_tokens and embeddings calls as it wished (bench/RESULTS.md, attack-wire2 and
wire3). So each counts as one request in every rate limit that covers its key and route, with its input
estimate as tokens (none for a count: its answer is a number), final at once: nothing to settle.
"""

from __future__ import annotations

import time
from typing import Any

from tierwise.budgets.checks import RateCheck
from tierwise.budgets.controller import StoreUnavailable


async def admit_side(spend: Any, route: str, key: Any, tokens: int, rid: str) -> None:
    """Count one side request of `key` on `route`; raises RateLimited (with `retry_after`) when a limit is
    reached, StoreUnavailable when the shared store is down and `on_store_error` is fail_closed."""
    if not spend.active or not spend.rate_cfg.limits:
        return
    kname = key.name if key is not None else ""
    plan = spend.plan(route, kname)
    if not plan.rates:
        return
    now = time.time()
    try:
        if not spend._sync:  # the minute on Redis's clock, as chat admissions read it
            if spend.store.offset is None:
                await spend.store.learn_offset()
            now += spend.store.offset
        rates = [RateCheck(r.key, r.rpm, r.tpm, tokens) for r in plan.rates]
        minute = int(now // 60)
        frac = (now - minute * 60) / 60.0
        if spend._sync:
            refusal = spend.store.reserve_now(rid, [], rates, now=now, minute=minute, frac=frac,
                                              deadline=now + spend.ttl, fits=spend.fits)
        else:
            refusal = await spend.store.reserve(rid, [], rates, now=now, minute=minute, frac=frac,
                                                deadline=now + spend.ttl, fits=spend.fits)
    except Exception as e:  # the shared store is unreachable
        spend.health.failed(e)
        if not spend.fail_open:
            raise StoreUnavailable("the gateway cannot check its rate limits right now (budget store "
                                   "unavailable); retry shortly") from None
        spend._warn(e)
        return
    if spend.health.down_since is not None:
        spend.health.answered()
    if refusal is not None:
        raise spend._rate_error(plan.rates[refusal.index], refusal, rates[refusal.index], frac)

