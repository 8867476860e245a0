"""The `budgets:` and `rate_limits:` sections of tierwise.yaml (both optional, off when absent).

A budget caps spend (USD and/or tokens) of the requests it covers within a window; a rate
limit caps requests and tokens per minute. Both are kept in one store (`budgets.store`):
in the process for one gateway, in Redis when several replicas must share them.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tierwise.redis_url import RedisUrl

Dimension = Literal["global", "key", "route", "tag", "session", "workflow", "model"]
RateDimension = Literal["global", "key", "route", "key_route"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(v: str | float | int) -> float:
    """Seconds in `90s`, `30m`, `1h`, `7d` (or a bare number of seconds)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    m = _DURATION.match(str(v))
    if not m:
        raise ValueError(f"{v!r} is not a duration such as 90s, 30m, 1h or 7d")
    return float(m.group(1)) * _UNIT[m.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rolling(_Strict):
    rolling: str = Field(description="length of a rolling window: 30m, 1h, 7d ...")

    @field_validator("rolling")
    @classmethod
    def _dur(cls, v: str) -> str:
        s = parse_duration(v)
        if not 60 <= s <= 366 * 86400:
            raise ValueError("a rolling window must last between 1m and 366d")
        return v

    @property
    def seconds(self) -> float:
        return parse_duration(self.rolling)


class BudgetLimit(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$",
                      description="names the budget in errors, traces and `tierwise budgets`")
    per: Dimension = Field("global", description="one budget for all covered requests (global) or one "
                           "per gateway key, route, feature tag, session, workflow or model")
    match: list[str] | None = Field(None, description="globs of the dimension's value this budget covers "
                                    "(none: every value)")
    routes: list[str] | None = Field(None, description="routes this budget covers (none: every route)")
    usd: float | None = Field(None, gt=0, description="spend cap in USD for the window")
    tokens: int | None = Field(None, gt=0, description="cap on frontier tokens (input + output) for the window")
    window: Literal["day", "month"] | Rolling = Field("day", description="day and month are calendar (UTC); "
                                                      "{rolling: 1h} a sliding window")

    @field_validator("window", mode="before")
    @classmethod
    def _one_window_error(cls, v: object) -> object:
        """One message for a wrong window, not one per member of the union (`literal['day','month']`, `Rolling`)."""
        if not isinstance(v, (str, dict, Rolling)):
            raise ValueError(f"{v!r} is not a window: `day`, `month` (calendar, UTC) or `{{rolling: 1h}}`")
        if isinstance(v, str) and v not in ("day", "month"):
            import difflib

            near = difflib.get_close_matches(v, ["day", "month"], n=1)
            raise ValueError(f"{v!r} is not a window: `day`, `month` (calendar, UTC) or `{{rolling: 1h}}`"
                             + (f" (did you mean `{near[0]}`?)" if near else ""))
        if isinstance(v, dict):
            if set(v) != {"rolling"}:
                raise ValueError("a rolling window is written `{rolling: 1h}` (one key, `rolling`)")
            from pydantic import ValidationError

            try:
                return Rolling(**v)
            except ValidationError as e:
                raise ValueError(str(e.errors()[0]["msg"]).removeprefix("Value error, ")) from None
        return v

    @model_validator(mode="after")
    def _some_cap(self) -> BudgetLimit:
        if self.usd is None and self.tokens is None:
            raise ValueError("a budget needs `usd`, `tokens` or both")
        return self


class RouteSpend(_Strict):
    on_exhausted: Literal["refuse", "downgrade"] | None = Field(
        None, description="refuse (429 in the client's schema) or answer from the local tier; "
        "default budgets.on_exhausted")
    downgrade_to: str | None = Field(None, description="model or route that answers when the budget is spent "
                                     "(default: the first local model the route reaches)")


class StoreConfig(_Strict):
    backend: Literal["memory", "redis"] = Field("memory", description="memory: this process only; redis: "
                                                "shared by every gateway pointing at the same Redis")
    redis_url: RedisUrl = Field("redis://127.0.0.1:6379/0", description="Redis server (redis backend)")
    key_prefix: str = Field("tierwise:spend:", min_length=1, max_length=128, pattern=r"^\S+$", description="prefix of every "
                            "Redis key tierwise writes")
    on_store_error: Literal["fail_closed", "fail_open"] = Field(
        "fail_closed", description="Redis unreachable: refuse requests covered by a limit (503), or let them "
        "through uncounted with a loud warning (once per warn_interval)")
    timeout: float = Field(0.5, gt=0, le=30, description="seconds a Redis call may take before it counts as an error")
    warn_interval: float = Field(60.0, gt=0, description="seconds between two fail_open warnings")


class BackgroundSpend(_Strict):
    """Upstream calls no client request's reservation covers (a learning loop's judge calls and shadow runs):
    admitted per call against the global, route and model budgets (budgets/background.py)."""

    charge_key: bool = Field(False, description="also charge the gateway key whose request started the work "
                             "(its `per: key` budgets); off: a key's budget pays only for its own answers")


class BudgetsConfig(_Strict):
    store: StoreConfig = Field(default_factory=StoreConfig)
    limits: list[BudgetLimit] = Field(default_factory=list)
    on_exhausted: Literal["refuse", "downgrade"] = Field("refuse", description="what a route does when a "
                                                         "budget it is covered by is spent")
    routes: dict[str, RouteSpend] = Field(default_factory=dict, description="per-route on_exhausted/downgrade_to")
    admit: Literal["remaining", "fits"] = Field(
        "remaining", description="remaining: admit while the budget is not spent (overshoot at most one "
        "request's reservation); fits: admit only when the worst-case cost fits what remains")
    reservation_ttl: float = Field(900.0, ge=10, le=86400, description="seconds after which a reservation that "
                                   "was never settled (a killed gateway) is released")
    dead_reservations: Literal["release", "count"] = Field(
        "count", description="a reservation past its deadline (its gateway was killed mid-request): count keeps it "
        "as spent (its worst case), so the cap holds through crashes; release gives it back (what the killed "
        "gateway's calls cost is then not counted). Redis store. Default count since session 35 (release before)")
    max_dimension_values: int = Field(
        10_000, ge=1, le=10_000_000, description="distinct tags, sessions or workflows (client-chosen values) a "
        "budget counts apart per gateway key in one process; beyond it that key's new values share one bucket "
        "until old ones expire")
    default_max_output_tokens: int = Field(4096, ge=1, description="output tokens reserved for a request that "
                                           "sets no max_tokens")
    max_output_tokens: int = Field(
        131_072, ge=1, le=2**31 - 1, description="the most answer tokens one request covered by a budget may ask "
        "for (max_tokens); more is refused with a 400 naming it. Without it, a remote model with no context_window "
        "let one request reserve a whole budget")
    background: BackgroundSpend = Field(default_factory=BackgroundSpend, description="evaluations, shadow runs "
                                        "and other calls made off a request's path (docs/budgets.md)")

    def per_process_ensemble_warning(self) -> str | None:
        """What to tell the user when the ensemble runs of `tierwise mcp` (and `tierwise ensemble run`) count
        in a budget apart from the gateway's: the memory store is one process's, so each process spends a cap
        that covers every route in full (an ensemble run's route, `ensemble:<name>`, is in no limit's `routes`)."""
        names = [b.name for b in self.limits if b.routes is None]
        if self.store.backend != "memory" or not names:
            return None
        return (f"budgets {', '.join(repr(n) for n in names)} use the memory store: `tierwise serve` and "
                "`tierwise mcp` (its ensemble runs) each count them in their own process, so together they can "
                "spend each cap once per process; set `budgets.store: {backend: redis}` to share one count "
                "(docs/budgets.md)")

    @model_validator(mode="after")
    def _unique(self) -> BudgetsConfig:
        if self.default_max_output_tokens > self.max_output_tokens:
            raise ValueError(f"default_max_output_tokens ({self.default_max_output_tokens}) is more than "
                             f"max_output_tokens ({self.max_output_tokens})")
        names = [b.name for b in self.limits]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"budget names must be unique: {sorted(dup)}")
        return self


class RateLimit(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    per: RateDimension = Field("key", description="one counter for all requests, or per key, route, or key and route")
    match: list[str] | None = Field(None, description="globs of the dimension's value (none: every value)")
    routes: list[str] | None = Field(None, description="routes this limit covers (none: every route)")
    requests_per_minute: int | None = Field(None, gt=0)
    tokens_per_minute: int | None = Field(None, gt=0, description="input (estimated at admission) plus output tokens")

    @model_validator(mode="after")
    def _some_cap(self) -> RateLimit:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ValueError("a rate limit needs requests_per_minute, tokens_per_minute or both")
        return self


class RateLimitsConfig(_Strict):
    limits: list[RateLimit] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> RateLimitsConfig:
        names = [b.name for b in self.limits]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"rate limit names must be unique: {sorted(dup)}")
        return self


def references(budgets: BudgetsConfig | None, rate: RateLimitsConfig | None,
               targets: set[str]) -> list[tuple[str, str]]:
    """(key path, problem) for every route or model name these sections name that does not exist."""
    from tierwise.config_keys import unknown_name

    def unknown(n: str) -> str:
        return unknown_name("route or model", n, targets)

    out: list[tuple[str, str]] = []
    if budgets is not None:
        for i, b in enumerate(budgets.limits):
            out += [(f"budgets.limits[{i}].routes", unknown(r))
                    for r in b.routes or [] if r not in targets]
        for name, rs in budgets.routes.items():
            if name not in targets:
                out.append((f"budgets.routes.{name}", unknown(name)))
            if rs.downgrade_to is not None and rs.downgrade_to not in targets:
                out.append((f"budgets.routes.{name}.downgrade_to", unknown(rs.downgrade_to)))
    if rate is not None:
        for i, r in enumerate(rate.limits):
            out += [(f"rate_limits.limits[{i}].routes", unknown(n))
                    for n in r.routes or [] if n not in targets]
    return out
