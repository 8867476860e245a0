"""What a request the budgets or rate limits refuse is told: the 429 of a spent budget (and when to come back), the
429 of a rate limit, and the 400 of a request asking for more answer than one request may reserve.

A budget's count holds what was spent and what requests in flight reserved for their worst case. When the
reservations alone make it look spent, waiting for the window's reset is the wrong advice: the budget frees as soon
as those requests end (each is settled at what it really cost). Before session 34 (review34b) such a 429 said "resets
at midnight" with a Retry-After of hours, while a retry a minute later would have been served.
"""

from __future__ import annotations

from typing import Any

from tierwise.budgets.checks import EPS, NO_LIMIT, BudgetCheck, RateCheck, Refusal, rate_retry_after
from tierwise.budgets.dimension_values import OVERFLOW
from tierwise.budgets.plan import RatePlan, RoutePlan, usd_text
from tierwise.budgets.status_rows import iso, never_fits
from tierwise.errors import BudgetExceeded, InvalidRequest, RateLimited

RETRY_SOON = 5.0  # seconds a client refused for reservations in flight is told to wait (they end and are settled)


def output_field(req: Any) -> str:
    """The name the client gave the answer's cap in its own API."""
    body = req.source_body
    if req.source_format == "anthropic":
        return "max_tokens"
    if body is None:
        return "max_output_tokens"  # (a Responses request: never passed through)
    return "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"


def check_output_cap(req: Any, ceiling: int) -> None:
    """400 for a request whose answer cap is more than `budgets.max_output_tokens` (past the clamp to the route's
    models' largest `context_window`, when each has one). A model without a `context_window` bounded nothing: `max_tokens: 2147483647` reserved $32,212 of a $10 budget and every other client
    was refused until it ended. OpenAI and Anthropic refuse a cap above the model's own limit the same way (400)."""
    asked = req.max_tokens
    if asked is None or asked <= ceiling:
        return
    field = output_field(req)
    raise InvalidRequest(f"{field} {asked} is more than one request may reserve under this gateway's budgets "
                         f"({ceiling} tokens of answer: budgets.max_output_tokens); lower {field}")


async def budget_spent(ctl: Any, ctx: Any, plan: RoutePlan, budgets: list[BudgetCheck], refusal: Refusal,
                       now: float) -> tuple[BudgetExceeded, str, dict[str, Any]]:
    """The refusal's 429 (raised by the caller unless the route downgrades), its message and the trace's detail.
    Under a refusing route, a `never fits` request is a 400 instead (raised here)."""
    check = budgets[refusal.index]
    prefix = ctl.prefix
    b = next(b for b in ctl.budgets if check.key.startswith(f"{prefix}b:{b.name}:"))
    resets = b.window.resets_at(check.slot, refusal.oldest_slot)
    value = check.key[len(f"{prefix}b:{b.name}:"):]
    scope = "" if b.spec.per == "global" else f" for {b.spec.per} {value}"
    if value == OVERFLOW or value.endswith("/" + OVERFLOW):  # (a key's own overflow bucket: `<key>/#overflow`)
        scope = (f" for new {b.spec.per} values (past budgets.max_dimension_values, new values share one "
                 "bucket)")
    usd = refusal.what == "usd"
    cap = usd_text(b.usd_limit) if usd else f"{int(b.tok_limit)} tokens"

    def amount(x: float) -> str:  # to a hundredth of a cent; a limit under a cent shows as many places as it has
        if not usd:
            return f"{int(x)} tokens"
        return f"${x:.4f}" if b.usd_limit >= 0.01 else usd_text(round(x, 10))

    detail: dict[str, Any] = {"budget": b.name, "per": b.spec.per, "value": value, "resets_at": iso(resets)}
    # (not for a further call of a request, a retry or a judge: the request's own reservation is among those in
    # flight, and what its call costs may spend the budget)
    held = await _held(ctl, check, refusal) if plan.downgrade is None and not getattr(ctx, "further", False) else 0.0
    spent = max(0.0, refusal.used - held)
    limit = b.usd_limit if usd else b.tok_limit
    need = (check.usd if usd else check.tok) if ctl.fits else 0.0
    if held > 0 and (spent + need <= limit + EPS if ctl.fits else spent < limit - EPS):
        # Spent only with the reservations of requests in flight: they free it as they end.
        msg = (f"budget {b.name!r}{scope} is held by requests in flight ({amount(held)} reserved for their worst "
               f"case, {amount(spent)} spent, of {cap} per {b.window.label}); retry when they end (it resets at "
               f"{iso(resets)})")
        detail["held"] = round(held, 6)
        wait = min(RETRY_SOON, max(1.0, resets - now))
    else:
        msg = (f"budget {b.name!r}{scope} is spent ({amount(refusal.used)} of {cap} per {b.window.label}, "
               f"reservations of requests in flight included); it resets at {iso(resets)}")
        wait = max(1.0, resets - now)
    err = BudgetExceeded(msg)
    err.retry_after = wait  # type: ignore[attr-defined]
    if plan.downgrade is None:
        never_fits(ctl.fits, ctx.trace, check, b.window.label, ctx.notes.get("budget_searched", 0))  # (raises if so)
        ctx.trace.decide("budget", msg, detail={**detail, "action": "refuse"})
    return err, msg, detail


async def _held(ctl: Any, check: BudgetCheck, refusal: Refusal) -> float:
    """What requests in flight hold of the refusing counter (USD or tokens, as refused); 0 when unknown."""
    try:
        u, t = await ctl.store.in_flight(check.key, check.slot, check.nslots)
    except Exception:  # (a store error here only loses the advice: the refusal stands)
        return 0.0
    held = u if refusal.what == "usd" else t
    return held if held > 0 and (check.usd_limit != NO_LIMIT or refusal.what != "usd") else 0.0


def rate_error(rp: RatePlan, refusal: Refusal, check: RateCheck, frac: float) -> RateLimited:
    if refusal.what == "requests":
        limit, need, unit = rp.rpm, 1.0, "requests"
    else:
        limit, need, unit = rp.tpm, float(check.tok), "tokens"
    wait = rate_retry_after(limit, need, refusal.cur, refusal.prev, frac)
    scope = "" if rp.spec.per == "global" else f" for {rp.spec.per.replace('_', ' and ')} {rp.value}"
    err = RateLimited(f"rate limit {rp.spec.name!r}{scope} reached: {int(limit)} {unit} per minute; "
                      f"retry in {int(wait + 0.999)}s")
    err.retry_after = wait  # type: ignore[attr-defined]
    return err
