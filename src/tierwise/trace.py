"""The trace of one request: every step a policy took, for the ledger, headers and `tierwise trace`.

A step is one model call (attempt), one verifier verdict or one decision, with its reason.
Policies append steps through `Trace.call`, `Trace.verdict` and `Trace.decide`; nothing here
does I/O, so recording is cheap on the hot path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from tierwise.canonical import Usage

StepKind = Literal["call", "verdict", "decision"]


@dataclass(slots=True)
class Step:
    kind: StepKind
    name: str  # deployment (model name), verifier name, or policy name
    ok: bool | None = None
    reason: str = ""
    model: str | None = None  # upstream model id for calls
    provider: str | None = None
    locality: str | None = None  # "local" | "remote"
    status: int | None = None  # HTTP status of a call, None if it never got one
    usage: Usage | None = None
    cost: float | None = None  # USD
    latency_ms: float | None = None
    ttft_ms: float | None = None
    score: float | None = None  # verifier score / router score
    detail: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.perf_counter)  # when it began (spans); not in the ledger

    def to_dict(self) -> dict[str, Any]:
        # Built by hand: `dataclasses.asdict` deep-copies and showed up in the hot path's profile.
        out: dict[str, Any] = {}
        for name in _STEP_FIELDS:
            v = getattr(self, name)
            if v is None or v == "" or (isinstance(v, dict) and not v):
                continue
            if isinstance(v, Usage):
                v = {"input_tokens": v.input_tokens, "output_tokens": v.output_tokens,
                     "cache_read_tokens": v.cache_read_tokens, "cache_write_tokens": v.cache_write_tokens,
                     "estimated": v.estimated}
            elif isinstance(v, dict):
                v = dict(v)
            out[name] = v
        return out


_STEP_FIELDS = tuple(f.name for f in fields(Step) if f.name != "at")


@dataclass(slots=True)
class Trace:
    request_id: str
    route: str
    started: float = field(default_factory=time.perf_counter)
    steps: list[Step] = field(default_factory=list)
    decision: str = ""  # what finally answered, e.g. the model name
    reason: str = ""  # why, in one line

    def call(self, name: str, **kw: Any) -> Step:
        s = Step("call", name, **kw)
        self.steps.append(s)
        return s

    def verdict(self, name: str, ok: bool, reason: str, score: float | None = None, **kw: Any) -> Step:
        s = Step("verdict", name, ok=ok, reason=reason, score=score, **kw)
        self.steps.append(s)
        return s

    def decide(self, name: str, reason: str, **kw: Any) -> Step:
        s = Step("decision", name, reason=reason, **kw)
        self.steps.append(s)
        self.reason = reason
        return s

    def calls(self) -> list[Step]:
        return [s for s in self.steps if s.kind == "call"]

    def total_usage(self) -> Usage:
        u = Usage()
        for s in self.steps:
            if s.kind == "call" and s.usage is not None:
                u.add(s.usage)
        return u

    def total_cost(self) -> float:
        return sum(s.cost or 0.0 for s in self.steps if s.kind == "call")

    def header_summary(self) -> str:
        """Compact `x-tierwise-steps` value: `call:local-qwen:ok,verdict:json:fail,call:claude:ok`."""
        parts = []
        for s in self.steps:
            state = "ok" if s.ok else ("fail" if s.ok is False else "-")
            parts.append(f"{s.kind}:{s.name}:{state}")
        return ",".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "route": self.route,
            "decision": self.decision,
            "reason": self.reason,
            "steps": [s.to_dict() for s in self.steps],
        }
