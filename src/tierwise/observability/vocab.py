"""Closed vocabularies for metric labels: error types, decision reasons, and bounded label values.

Nothing a client writes becomes a label: error types and reasons map onto the fixed words below,
and names (models, routes, verifiers) are kept up to a cap, after which they read `other`.
"""

from __future__ import annotations

import re

# Exception class name -> error type. Looked up along the class's MRO, so subclasses land on
# their nearest listed ancestor.
ERROR_TYPES: dict[str, str] = {
    "BudgetExceeded": "budget_exceeded",
    "RateLimited": "rate_limited",
    "RateLimitHold": "rate_limited",
    "CircuitOpen": "circuit_open",
    "UpstreamTimeout": "timeout",
    "ContextOverflow": "context_overflow",
    "Overloaded": "overloaded",
    "StoreUnavailable": "store_unavailable",  # the budget or approvals store (Redis) did not answer: 503
    "UpstreamError": "upstream_error",
    "InvalidRequest": "invalid_request",
    "AuthenticationError": "authentication",
    "PermissionDenied": "permission",
    "NotFound": "not_found",
    "RequestTooLarge": "request_too_large",
    "ConfigError": "config",
    "Internal": "internal",
}
NONE = "none"
CLIENT_CLOSED = "client_closed"
OTHER = "other"
ERROR_VOCABULARY = frozenset({*ERROR_TYPES.values(), NONE, CLIENT_CLOSED, OTHER, "upstream_4xx", "upstream_5xx",
                              "rate_limited", "cancelled"})


def error_type(err: BaseException | None, status: int = 200) -> str:
    if err is None:
        if status == 499:
            return CLIENT_CLOSED
        return NONE if status < 400 else OTHER
    for cls in type(err).__mro__:
        t = ERROR_TYPES.get(cls.__name__)
        if t is not None:
            return t
    return OTHER


def call_error_type(ok: bool | None, status: int | None, reason: str) -> str:
    """The error type of one upstream call step (from its status, and its reason's fixed prefixes)."""
    if ok:
        return NONE
    if reason == "circuit open":
        return "circuit_open"
    if reason == "cancelled":
        return "cancelled"
    if reason.startswith("rate-limited: "):  # not tried: the upstream's last 429 asked for a pause (breaker.py)
        return "rate_limited"
    if status is not None:
        if status == 429:
            return "rate_limited"
        if status >= 500:
            return "upstream_5xx"
        if status >= 400:
            return "upstream_4xx"
    low = reason.lower()
    if "timed out" in low or "timeout" in low or "no complete stream event" in low or "streamed for longer" in low:
        return "timeout"
    return "upstream_error" if status is None and reason else OTHER


# A decision's reason is free text written by a policy; its label is the first of these that fits.
_REASONS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((k, re.compile(p)) for k, p in (
    ("default", r"no rule matched|-> default|no specialist needed"),
    # Before `rule`: "local: max_tokens 64,000 -> 21,862 to fit window 32,768" has a rule's shape (name: ... ->),
    # and every Claude Code subagent turn on a local model counted a second rule decision.
    ("window_fit", r"to fit window|cannot hold the request|skipped"),
    ("rule", r"^[^:]+: .* -> "),
    ("escalate", r"escalat"),
    ("fallback", r"fell back"),
    ("router_score", r"router score|router failed"),
    ("advisor", r"advisor|compression by"),
    ("specialist", r"specialist"),
    ("accepted", r"accept|pass|verified|ok\b"),
    ("failed", r"failed"),
))
DECISION_REASONS = frozenset({k for k, _ in _REASONS} | {OTHER})


def reason_label(reason: str) -> str:
    low = reason[:300].lower()
    for key, pat in _REASONS:
        if pat.search(low):
            return key
    return OTHER


class Bounded:
    """Keeps at most `cap` distinct label values; the rest become `other`. Known names are always kept."""

    __slots__ = ("cap", "seen")

    def __init__(self, cap: int, known: tuple[str, ...] | list[str] = ()) -> None:
        self.cap = cap
        self.seen: set[str] = set(known)

    def __call__(self, value: str | None) -> str:
        if not value:
            return ""
        if value in self.seen:
            return value
        if len(self.seen) >= self.cap or len(value) > 100:
            return OTHER
        self.seen.add(value)
        return value
