"""What the ledger stores about one request, and how a finished trace becomes that record."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from tierwise.secret_scrub import CLEAN_NAMES, client_name, holds, scrub_value
from tierwise.trace import Trace


@dataclass(slots=True)
class LedgerRecord:
    request_id: str
    ts: float  # unix seconds when the request finished
    route: str
    kind: str = "chat"  # chat | ensemble | shadow | eval | embeddings (a remote embeddings call)
    client_format: str = ""
    stream: bool = False
    status: int = 200
    error_kind: str | None = None
    error_message: str | None = None
    decision: str | None = None  # the target (model name) that answered
    reason: str = ""  # why, in one line
    locality: str | None = None  # of the answering model
    model: str | None = None  # upstream model id that answered
    provider: str | None = None
    feature: str | None = None
    # Tokens of every call the request made (what was paid for), not only the answering one.
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    tokens_estimated: bool = False
    cost_usd: float | None = None
    reference_model: str | None = None
    # What the answering call's tokens would have cost on the reference frontier model.
    reference_cost_usd: float | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    shadow: dict[str, Any] | None = None
    # Only when the config asks for it (`ledger.store_text`): replay and training need them.
    prompt: str | None = None
    answer: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # evaluations, labels, scores added later
    # Last, so rows journaled by an older version (without it) still line up with COLUMNS.
    requested_model: str | None = None  # the `model` the client asked for (a route, a model or any name)
    # Crossings of the privacy boundary (tierwise.privacy.audit): destinations, classes, counts, hashes.
    privacy: list[dict[str, Any]] | None = None
    # The arm a `split` route sent the request to (policies/split.py); None elsewhere and in older rows.
    arm: str | None = None

    @property
    def savings_usd(self) -> float | None:
        if self.reference_cost_usd is None or self.cost_usd is None:
            return None
        return self.reference_cost_usd - self.cost_usd

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


COLUMNS = [f.name for f in fields(LedgerRecord)]
JSON_COLUMNS = frozenset({"steps", "shadow", "extra", "privacy"})


def record_from_trace(trace: Trace, **kw: Any) -> LedgerRecord:
    """A record from a finished trace; `kw` gives the fields the trace does not know."""
    usage = trace.total_usage()
    calls = trace.calls()
    priced = [s.cost for s in calls if s.cost is not None]
    # One call without a known price makes the whole request's cost unknown: a partial sum would
    # read as a real (too low) figure and show up as savings.
    unpriced = any(s.cost is None and s.usage is not None and s.ok for s in calls)
    return LedgerRecord(
        request_id=trace.request_id,
        route=trace.route,
        reason=trace.reason,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        tokens_estimated=usage.estimated,
        cost_usd=None if unpriced else sum(priced),
        steps=[s.to_dict() for s in trace.steps],
        **kw,
    )


# Free text a record may carry from an upstream or a model (error bodies, reasons, shadow answers); the
# client's names (`requested_model`, `feature`) are scrubbed on their own in `scrub_record`. The other step
# fields are names from the config and numbers. The prompt and answer (`ledger.store_text`) are the client's
# content and are kept as given.
_FREE_TEXT = ("error_message", "reason", "steps", "shadow", "extra")


def scrub_record(rec: LedgerRecord) -> LedgerRecord:
    """Remove the gateway's secrets from a record's free text, in place, before it is stored.

    A record without free text (a plain answered request) costs a loop over its steps; otherwise
    one scan over that text's JSON, and the fields are rewritten only when it finds something.
    """
    # Names the client chose (its `model`, its feature tag): a key put there by mistake went to the disk as
    # sent (session 29). A name found clean once costs a set lookup here (review29f: was two calls per name).
    # (None, no feature, is in the set too: one test per name.)
    if rec.requested_model not in CLEAN_NAMES:
        rec.requested_model = client_name(rec.requested_model)
    if rec.feature not in CLEAN_NAMES:
        rec.feature = client_name(rec.feature)
    parts: list[Any] = [p for p in (rec.error_message, rec.reason, rec.shadow, rec.extra) if p]
    for s in rec.steps:
        if s.get("reason"):
            parts.append(s["reason"])
        if s.get("detail"):
            parts.append(s["detail"])
    if not parts:
        return rec
    if holds(orjson.dumps(parts, default=str, option=orjson.OPT_NON_STR_KEYS).decode()):
        for f in _FREE_TEXT:
            setattr(rec, f, scrub_value(getattr(rec, f)))
    return rec
