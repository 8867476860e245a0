"""What applies to a request, worked out once per (route, key) and kept: the budgets and rate
limits that cover it, the prices of the frontier models the route can reach (the worst case a
reservation covers) and the local target a spent budget downgrades to.

Per request only the dynamic dimensions (feature tag, session, workflow: headers or metadata)
and the window slots are computed.
"""

from __future__ import annotations

import calendar
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from tierwise.budgets.checks import NO_LIMIT, ROLLING_SLOTS
from tierwise.budgets.config import BudgetLimit, RateLimit, Rolling

TAG_HEADERS = ("x-tierwise-tag", "x-tierwise-feature")
SESSION_HEADER = "x-tierwise-session"
WORKFLOW_HEADER = "x-tierwise-workflow"
MAX_VALUE = 64  # longer dimension values (client text) are hashed into the key


def dimension_value(per: str, headers: dict[str, str], metadata: dict[str, Any]) -> str | None:
    """The request's tag / session / workflow (header first, then `tierwise_<name>` in metadata)."""
    if per == "tag":
        v = headers.get(TAG_HEADERS[0]) or headers.get(TAG_HEADERS[1]) or metadata.get("tierwise_tag") \
            or metadata.get("tierwise_feature")
    elif per == "session":
        v = headers.get(SESSION_HEADER) or metadata.get("tierwise_session")
    else:
        v = headers.get(WORKFLOW_HEADER) or metadata.get("tierwise_workflow")
    return str(v) if v else None


def key_part(value: str) -> str:
    """A dimension value as it appears in a store key: bounded, no separators."""
    if len(value) <= MAX_VALUE and value.isprintable() and ":" not in value and " " not in value:
        return value
    return "#" + hashlib.blake2b(value.encode("utf-8", "replace"), digest_size=12).hexdigest()


def usd_text(usd: float) -> str:
    """Dollars in plain decimals for people: `$20`, `$0.00005` (`:g` wrote a tiny limit as `$5e-05`)."""
    return "$" + (f"{usd:.10f}".rstrip("0").rstrip(".") or "0")


def owner_part(key_name: str) -> str:
    """A gateway key's name as the first part of a bucket of its own (`<owner>/<value>`): never holding a
    `/`, so the first one splits the two (a key named `team` naming session `a/x` is not key `team/a`'s `x`)."""
    if "/" in key_name:
        return "#" + hashlib.blake2b(key_name.encode("utf-8", "replace"), digest_size=12).hexdigest()
    return key_part(key_name)


def pair_part(key: str, route: str) -> str:
    """A `key_route` rate limit's key and route in a store key. Both names are free text, so `key/route` alone
    is ambiguous: key `team/a` on route `x` and key `team` on route `a/x` shared one counter. A pair with a `/`
    in either name is hashed with the key's length, which tells the two apart."""
    if "/" in key or "/" in route:
        return "#" + hashlib.blake2b(f"{len(key)}:{key}/{route}".encode("utf-8", "replace"), digest_size=12).hexdigest()
    return key_part(f"{key}/{route}")


@dataclass(slots=True)
class Window:
    kind: str  # day | month | rolling
    seconds: float  # rolling: its length; calendar: nominal
    slot_len: float
    nslots: int
    expire_s: int
    label: str
    _month: tuple[float, float, int] = (0.0, 0.0, 0)  # the current month's [start, end) and slot, cached

    def slot(self, now: float) -> int:
        if self.kind == "month":
            start, end, slot = self._month
            if not start <= now < end:
                t = time.gmtime(now)
                slot = t.tm_year * 12 + t.tm_mon - 1
                self._month = (calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)), self.resets_at(slot, None), slot)
            return slot
        return int(now // self.slot_len)

    def resets_at(self, slot: int, oldest: int | None) -> float:
        """When the counted spend drops: the next calendar window, or when the oldest slot leaves."""
        if self.kind == "month":
            y, m = divmod(slot + 1, 12)
            return float(calendar.timegm((y, m + 1, 1, 0, 0, 0)))
        if self.kind == "day":
            return (slot + 1) * self.slot_len
        first = oldest if oldest is not None else slot
        return (first + self.nslots) * self.slot_len


def window_of(w: str | Rolling) -> Window:
    if isinstance(w, Rolling):
        s = w.seconds
        return Window("rolling", s, s / ROLLING_SLOTS, ROLLING_SLOTS, int(s + s / ROLLING_SLOTS) + 60,
                      f"rolling {w.rolling}")
    if w == "month":
        return Window("month", 31 * 86400, 31 * 86400, 1, 32 * 86400 + 3600, "month")
    return Window("day", 86400, 86400, 1, 86400 + 3600, "day")


@dataclass(slots=True)
class Budget:
    spec: BudgetLimit
    window: Window
    usd_limit: float
    tok_limit: float

    @property
    def name(self) -> str:
        return self.spec.name

    def covers_route(self, route: str) -> bool:
        return self.spec.routes is None or route in self.spec.routes

    def matches(self, value: str) -> bool:
        return self.spec.match is None or any(fnmatchcase(value, g) for g in self.spec.match)


def compile_budget(spec: BudgetLimit) -> Budget:
    return Budget(spec, window_of(spec.window), spec.usd if spec.usd is not None else NO_LIMIT,
                  float(spec.tokens) if spec.tokens is not None else NO_LIMIT)


@dataclass(slots=True)
class StaticCharge:
    """A budget bucket known from the route and key alone; `model` set for per-model budgets."""

    budget: Budget
    key: str
    value: str
    model: str | None = None


@dataclass(slots=True)
class RatePlan:
    spec: RateLimit
    key: str
    value: str
    rpm: float
    tpm: float


@dataclass(slots=True)
class RoutePlan:
    remote: dict[str, tuple[float, float]]  # remote model -> (input, output) USD per million tokens
    in_price: float  # the dearest remote input and output prices: the worst case of one call
    out_price: float
    max_context: int | None
    static: list[StaticCharge] = field(default_factory=list)
    dynamic: list[Budget] = field(default_factory=list)  # tag / session / workflow budgets
    rates: list[RatePlan] = field(default_factory=list)
    downgrade: Any = None  # the local Target that answers when a budget is spent (None: refuse)
    downgrade_name: str | None = None
    per_model: bool = False  # some budget is per model: settlement splits the cost by model
    cells: Any = None  # the in-process store's counters for this plan (MemoryStore.take)
    # An Anthropic model's five-minute and one-hour cache writes over its input price (the dearest): a request asking
    # for such writes reserves its input that many times (1.0: no remote Anthropic model)
    five: float = 1.0
    hour: float = 1.0
    search: float = 0.0  # USD per web search, the dearest of the route's remote Anthropic models (0: none)
    call_fee: float = 0.0  # USD per call on top of its tokens, the dearest of the route's remote models (`price.request`)
    max_output: int | None = None  # the largest `max_output_tokens` of the route's remote models (None: one has none)

    @property
    def has_budgets(self) -> bool:
        return bool(self.static or self.dynamic)



def reachable(name: str, routes: dict[str, Any], references: Callable[[Any], list[str]],
              models: dict[str, Any]) -> list[str]:
    """Every model a route (or model) can call, in the order its config names them."""
    out: list[str] = []
    seen: set[str] = set()

    def walk(n: str, depth: int) -> None:
        if n in seen or depth > 64:
            return
        seen.add(n)
        if n in models:
            out.append(n)
            return
        pc = routes.get(n)
        if pc is not None:
            for ref in references(pc):
                walk(ref, depth + 1)

    walk(name, 0)
    return out
