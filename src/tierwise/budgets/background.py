"""Budgets for upstream calls no client request's reservation covers.

A client request is admitted once (`SpendController.admit`) and settled where its ledger row is made: every call
on its own trace counts. Work a request starts off its path has a trace of its own and was counted by no budget:
a learning loop's judge calls and shadow runs (often the frontier model). A `$10/day` global budget then did not
hold: the loop spent frontier money past it, bounded only by the keys' request rates. (An ensemble's member calls
have their own per-call admission, `SpendController.admit_call`, made for a request's budgets.)

Such work marks its context with `charge_background`. Each remote call made on that context is then admitted on
its own, just before it leaves (providers/deployment.py asks `BackgroundCharge.call`): its worst case (the call's
estimated input and its output cap at that model's prices) is reserved in the global budgets, the budgets of the
route the work belongs to, the per-model budgets of the model called, and (with `budgets.background.charge_key`)
the budgets of the gateway key whose request started it. Tag, session and workflow budgets and the rate limits
are a client's own and are not charged. A budget that refuses raises `BudgetSkipped`: the work stops there and
records itself as skipped (never a verdict); the client's answer was given before and is unaffected. The real
cost replaces the reservation when the call ends, however it ends (an error or a cancellation releases it).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tierwise.budgets.checks import BudgetCheck, Settlement
from tierwise.budgets.plan import usd_text
from tierwise.errors import TierwiseError

BACKGROUND = "budget_background"  # ctx.notes key: the context's BackgroundCharge
MILLION = 1_000_000
_ids = itertools.count(1)


class BudgetSkipped(TierwiseError):
    """A background call a budget refused: the work it belongs to is skipped (no client ever sees this)."""

    status = 429
    kind = "rate_limit_error"


def charge_background(ctx: Any, origin: Any | None = None, kind: str = "evaluation") -> None:
    """Make `ctx` (a background work's own context, whose trace names the route it belongs to) admit its remote
    calls against the budgets. `origin` is the request that started the work (its gateway key)."""
    spend = getattr(getattr(ctx, "services", None), "spend", None)
    if spend is None or not getattr(spend, "budgets", None):
        return
    key = (origin.notes.get("key_name") or "") if origin is not None else ""
    ctx.notes[BACKGROUND] = BackgroundCharge(spend, ctx.trace.route, key, kind)


class BackgroundCharge:
    __slots__ = ("spend", "route", "key", "kind")

    def __init__(self, spend: Any, route: str, key: str, kind: str) -> None:
        self.spend = spend
        self.route = route
        self.key = key
        self.kind = kind

    async def call(self, fn: Callable[..., Awaitable[Any]], dep: Any, req: Any, ctx: Any, check: Any) -> Any:
        """Run one remote call `fn(req, ctx, check)` of deployment `dep` inside its own reservation."""
        held = await self._admit(dep, req, ctx)
        if held is None:
            return await fn(req, ctx, check)
        before = len(ctx.trace.steps)
        try:
            return await fn(req, ctx, check)
        finally:
            self._settle(held, dep, ctx.trace.steps[before:])

    def _checks(self, dep: Any, now: float, usd: float, tok: int) -> list[BudgetCheck]:
        sp = self.spend
        charge_key = sp.cfg.background.charge_key and self.key
        out = []
        for b in sp.budgets:
            if not b.covers_route(self.route):
                continue
            per = b.spec.per
            if per == "global":
                value = "*"
            elif per == "route":
                value = self.route
            elif per == "model":
                value = dep.name
            elif per == "key" and charge_key:
                value = self.key
            else:  # tag, session, workflow: a client's own; a key's budget only with charge_key
                continue
            if per != "global" and not b.matches(value):
                continue
            w = b.window
            out.append(BudgetCheck(sp._bucket(b, value), w.slot(now), w.nslots, b.usd_limit, b.tok_limit, usd, tok,
                                   w.expire_s))
        return out

    async def _admit(self, dep: Any, req: Any, ctx: Any) -> tuple[str, list[BudgetCheck], int] | None:
        from tierwise.tokens import PER_FETCHED_DOCUMENT, estimate_request, fetched_documents_in, hidden_input

        sp = self.spend
        price = dep.price
        pin, pout = (price.input, price.output) if price is not None else (0.0, 0.0)
        est_in = estimate_request(req) + hidden_input(req) + PER_FETCHED_DOCUMENT * fetched_documents_in(req)
        out = req.max_tokens or sp.default_out
        window = dep.cfg.context_window
        if window:
            est_in, out = min(est_in, window), min(out, window)
        req.max_tokens = out  # the upstream stops where the reservation does
        n = req.n if req.n > 1 else 1
        now = time.time()
        checks = self._checks(dep, now, (est_in * pin + out * pout) * n / MILLION, (est_in + out) * n)
        if not checks:
            return None
        rid = f"{ctx.trace.request_id}~bg{next(_ids)}"
        minute = int(now // 60)
        try:
            refusal = await sp.store.reserve(rid, checks, [], now=now, minute=minute, frac=(now - minute * 60) / 60,
                                             deadline=now + sp.ttl, fits=sp.fits)
        except Exception as e:  # the shared store is away: as the request path does (fail_open / fail_closed)
            if sp.fail_open:
                sp._warn(e)
                return None
            self._skip(ctx, dep, "the budget store is unavailable", {})
        if refusal is None:
            return rid, checks, est_in
        c = checks[refusal.index]
        b = next(b for b in sp.budgets if c.key.startswith(f"{sp.prefix}b:{b.name}:"))
        value = c.key[len(f"{sp.prefix}b:{b.name}:"):]
        cap = usd_text(b.usd_limit) if refusal.what == "usd" else f"{int(b.tok_limit)} tokens"
        used = f"${refusal.used:.4f}" if refusal.what == "usd" else f"{int(refusal.used)} tokens"
        scope = "" if b.spec.per == "global" else f" for {b.spec.per} {value}"
        self._skip(ctx, dep, f"budget {b.name!r}{scope} is spent ({used} of {cap} per {b.window.label})",
                   {"budget": b.name, "per": b.spec.per, "value": value})
        return None  # (not reached)

    def _skip(self, ctx: Any, dep: Any, why: str, detail: dict[str, Any]) -> None:
        msg = f"{self.kind} call to {dep.name} skipped: {why}"
        ctx.trace.decide("budget", msg, detail={**detail, "action": "skip", "kind": self.kind, "model": dep.name})
        raise BudgetSkipped(msg)

    def _settle(self, held: tuple[str, list[BudgetCheck], int], dep: Any, steps: list[Any]) -> None:
        rid, checks, est_in = held
        price = dep.price
        pin, pout = (price.input, price.output) if price is not None else (0.0, 0.0)
        usd = tok = 0.0
        for s in steps:
            if s.kind != "call":
                continue
            u = s.usage
            if u is None:  # cut off before any usage: the provider bills the input it read
                if s.reason == "cancelled":
                    usd += est_in * pin / MILLION
                    tok += est_in
                continue
            t = u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens
            usd += s.cost if s.cost is not None else (u.input_tokens * pin + u.output_tokens * pout) / MILLION
            tok += t
        settlements = [Settlement(c.key, c.slot, c.usd, c.tok, usd, int(tok), c.expire_s) for c in checks]
        sp = self.spend
        now = time.time()
        if not sp.store.shared:
            sp.store.settle_now(rid, settlements, [], now=now, settled_ttl=600)
            return
        task = asyncio.ensure_future(sp._settle_shared(rid, settlements, [], now))
        sp._pending.add(task)
        task.add_done_callback(sp._pending.discard)
