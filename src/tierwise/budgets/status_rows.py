"""One budget bucket as `GET /v1/tierwise/budgets` (and the metrics gauge) shows it: what its counters hold in the
window's current slots, what remains, and when it resets."""

from __future__ import annotations

import time
from typing import Any


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
