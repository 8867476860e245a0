"""Rate limits and budgets for the side endpoints: `POST /v1/messages/count_tokens`,
`POST /v1/responses/input_tokens` and `POST /v1/embeddings`.

They run no policy, but each is a request a client can repeat as fast as it likes: a key held to two chat
requests a minute sent as many count_tokens and embeddings calls as it wished (bench/RESULTS.md, attack-wire2
and wire3). So each counts as one request in every rate limit that covers its key and route, with its input
estimate as tokens (none for a count: its answer is a number), final at once: nothing to settle.

Anthropic does not bill token counting, but a remote embeddings model bills every input token: until session 29
an embeddings call spent no budget, and a key held to a $0.20 `per: key` budget embedded $1.20 of text in twelve
calls, counted $0 (unbounded). `EmbeddingsCharge` admits each call to a remote deployment like one model call
(budgets/background.py's `CallCharge`: every budget covering the key and route, its tags and session included; the
inputs' estimate at the model's input price, no output), refuses it with the budget's 429 once one is spent, and
settles it at the prompt tokens the upstream reports (the estimate when it reports none or fails while answering;
nothing when it refuses the call).
"""

from __future__ import annotations

import time
from typing import Any

from tierwise.budgets.background import CallCharge
from tierwise.budgets.checks import RateCheck
from tierwise.budgets.controller import NOTE, StoreUnavailable
from tierwise.budgets.refusals import rate_error
from tierwise.canonical import Usage
from tierwise.pricing import cost
from tierwise.trace import Step
from tierwise.wire._check import token_count


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
        raise rate_error(plan.rates[refusal.index], refusal, rates[refusal.index], frac)



class EmbeddingsCharge:
    """One embeddings call to deployment `dep` inside its own reservation: `admit` before it leaves (raises the
    budget's error), `settle` once it has ended, however it ended."""

    __slots__ = ("charge", "dep", "view", "estimate")

    def __init__(self, charge: CallCharge, dep: Any) -> None:
        self.charge, self.dep = charge, dep
        self.view: Any = None
        self.estimate = 0

    @classmethod
    async def admit(cls, spend: Any, route: str, key: Any, dep: Any, req: Any, ctx: Any) -> EmbeddingsCharge | None:
        """None when no budget covers the call (no budgets, a local model): nothing to settle. `req` is the call
        as a canonical request (the inputs as user messages, the client's headers, `max_tokens` 1)."""
        if not spend.active or not spend.budgets or dep.locality != "remote":
            return None
        kname = key.name if key is not None else ""
        c = cls(CallCharge(spend, route, kname, "embeddings", dims=req), dep)
        c.view = await c.charge._admit(dep, req, ctx)
        if c.view is None:
            return None
        held = c.view.notes.get(NOTE)  # the reservation's input estimate: what a call without usage counts
        c.estimate = int(held[5] if type(held) is tuple else getattr(held, "est_in", 0))
        return c

    def settle(self, ctx: Any, step: Step | None) -> None:
        """`step`: the call's (`embeddings_step`), None when it was refused or never sent (billed nothing)."""
        if step is not None:
            self.view.trace.steps.append(step)
        self.charge._settle(self.view, ctx)


def embeddings_step(dep: Any, estimate: int, answer: Any = None, answering: bool = False) -> Step | None:
    """The trace step of one embeddings call to `dep`, counted as the budgets and the ledger count it. `answer`: the
    upstream's embeddings answer (its `usage.prompt_tokens`); `answering`: the call failed after the upstream had
    it (the `estimate`); neither: refused or never sent (None: nothing was billed)."""
    if answer is not None:
        usage = answer.get("usage") if type(answer) is dict else None
        given = usage.get("prompt_tokens") if type(usage) is dict else None
        tokens = token_count(given) or estimate  # (0 for a count that is not one)
        if tokens < estimate // 8:  # too few for the inputs sent (~32 characters a token): not believed (costs9)
            tokens = estimate
    elif answering:
        tokens = estimate
    else:
        return None
    u = Usage(input_tokens=tokens, estimated=tokens == estimate)
    return Step("call", dep.name, ok=answer is not None, model=dep.cfg.model, provider=dep.provider.name,
                locality=dep.locality, usage=u, cost=cost(dep.price, u))
