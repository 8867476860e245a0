"""One budget bucket as `GET /v1/tierwise/budgets` (and the metrics gauge) shows it: what its counters hold in the
window's current slots, what remains, and when it resets."""

from __future__ import annotations

import time
from typing import Any

from tierwise.budgets.checks import EPS, NO_LIMIT, BudgetCheck
from tierwise.errors import InvalidRequest


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def bucket_row(b: Any, value: str, fields: dict[str, float], now: float) -> dict[str, Any]:
    """`fields`: the bucket's counters as the store holds them (`u<slot>` dollars, `t<slot>` tokens); only the
    window's current slots count."""
    w = b.window
    slot = w.slot(now)
    u = t = 0.0
    oldest = None
    for f, v in fields.items():
        s = int(f[1:])
        if f[0] not in "ut" or not slot - w.nslots < s <= slot:
            continue  # (`s<slot>`, `k<slot>`: the settled part, which the gateways mirror: spend_mirror.py)
        if f[0] == "u":
            u += v
        else:
            t += v
        if v > 0 and (oldest is None or s < oldest):
            oldest = s
    row: dict[str, Any] = {"budget": b.name, "per": b.spec.per, "value": value, "window": w.label,
                           "resets_at": iso(w.resets_at(slot, oldest))}
    if b.usd_limit >= 0:
        row.update(usd_used=round(u, 6), usd_limit=b.usd_limit, usd_remaining=round(max(0.0, b.usd_limit - u), 6))
    if b.tok_limit >= 0:
        row.update(tokens_used=int(t), tokens_limit=int(b.tok_limit), tokens_remaining=int(max(0.0, b.tok_limit - t)))
    return row


def never_fits(fits: bool, trace: Any, check: BudgetCheck, window: str, searched: int) -> None:
    """Under `admit: fits`, refuse (400) a request whose own worst case is more than the whole budget: no wait lets it
    in. Before review31c it was told the budget was spent ("$0.0000 of $0.25 … resets at midnight", a 429), every
    day: since costs3 a request allowing web search without `max_uses` reserves 100,000 input tokens of results
    ($0.40 with Sonnet and the searches' fee)."""
    if not fits:
        return
    if check.usd_limit != NO_LIMIT and check.usd > check.usd_limit + EPS:
        need, cap = f"${check.usd:.4f}", f"${check.usd_limit:g}"
    elif check.tok_limit != NO_LIMIT and check.tok > check.tok_limit:
        need, cap = f"{check.tok} tokens", f"{int(check.tok_limit)} tokens"
    else:
        return
    what = f" and {searched} input tokens of web search or fetch results" if searched else ""
    msg = (f"this request's worst case ({need}: its input, its max_tokens of answer{what}) is more than the whole "
           f"budget ({cap} per {window}): it can never be admitted under `admit: fits`; lower max_tokens"
           + (" or the web search and fetch tools' max_uses, or web fetch's max_content_tokens (each search or "
              "fetch allowed reserves input tokens of its results)" if searched else ""))
    trace.decide("budget", msg, detail={"action": "refuse", "never_fits": True})
    raise InvalidRequest(msg)
