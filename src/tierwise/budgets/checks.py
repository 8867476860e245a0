"""What a store is asked at admission and settlement, and what it answers: plain records, so the
in-process and the Redis store implement exactly the same arithmetic.

A budget's counters live in a hash per bucket (budget name + the value of its dimension), one
field per time slot: `u<slot>` (USD) and `t<slot>` (tokens). A calendar window (day, month) is one
slot; a rolling window is 60 slots of 1/60 of its length, summed. A rate limit's counters are
fields `r<minute>` and `t<minute>`: the sliding minute is approximated from the current and the
previous minute (the two-bucket approximation), weighting the previous one by the part of it
still inside the last 60 seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NO_LIMIT = -1.0
ROLLING_SLOTS = 60
EPS = 1e-12  # float sums of many small costs: a budget spent to the last femto-dollar is spent


@dataclass(slots=True)
class BudgetCheck:
    key: str  # the bucket's full store key
    slot: int
    nslots: int
    usd_limit: float  # NO_LIMIT when the budget caps only tokens
    tok_limit: float
    usd: float  # reserved by this request
    tok: int
    expire_s: int  # the bucket outlives its window by this much at most


@dataclass(slots=True)
class RateCheck:
    key: str
    rpm: float  # NO_LIMIT when unset
    tpm: float
    tok: int  # tokens counted at admission (the input estimate)


@dataclass(slots=True)
class Settlement:
    key: str
    slot: int
    reserved_usd: float
    reserved_tok: int
    usd: float  # what was really spent
    tok: int
    expire_s: int


@dataclass(slots=True)
class RateSettlement:
    key: str
    minute: int
    tok: int  # correction: real tokens minus what admission counted


@dataclass(slots=True)
class Refusal:
    kind: Literal["budget", "rate"]
    index: int  # which check refused (in the order given)
    what: Literal["usd", "tokens", "requests"]
    used: float  # budget: in the window; rate: the sliding-minute estimate
    oldest_slot: int | None = None  # budget, rolling window: the oldest slot still counted
    cur: float = 0.0  # rate: this minute's and the previous minute's counts
    prev: float = 0.0


def budget_refusal(usd_limit: float, tok_limit: float, usd: float, tok: float, u: float, t: float,
                   fits: bool) -> str | None:
    """'usd' or 'tokens' when a check (limits, and what this request reserves: usd, tok) refuses
    (u, t: used in the window), else None."""
    if usd_limit >= 0 and (u + usd > usd_limit + EPS if fits else u >= usd_limit - EPS):
        return "usd"
    if tok_limit >= 0 and (t + tok > tok_limit if fits else t >= tok_limit):
        return "tokens"
    return None


def rate_refusal(rpm: float, tpm: float, tok: float, cur_r: float, prev_r: float, cur_t: float, prev_t: float,
                 frac: float) -> str | None:
    w = 1.0 - frac
    if rpm >= 0 and prev_r * w + cur_r + 1 > rpm:
        return "requests"
    est_t = prev_t * w + cur_t
    # A request larger than the whole limit still runs when nothing else is counted (else it never could).
    if tpm >= 0 and est_t > 0 and est_t + tok > tpm:
        return "tokens"
    return None


def rate_retry_after(limit: float, need: float, cur: float, prev: float, frac: float) -> float:
    """Seconds until the sliding-minute estimate leaves room for `need` more under `limit`."""
    if prev > 0:
        x = (prev * (1 - frac) + cur + need - limit) / prev
        if x <= 1 - frac:
            return max(1.0, 60.0 * x)
    y = (cur + need - limit) / cur if cur > 0 else 0.0
    return max(1.0, 60.0 * (1 - frac) + 60.0 * min(1.0, max(0.0, y)))
