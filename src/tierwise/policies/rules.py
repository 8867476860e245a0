"""Rule routing: the first matching rule fixes the target, from features of the request.

Rules match on the requested model/route name (glob patterns such as `*haiku*`), a feature
tag (`X-Tierwise-Feature` header or `metadata.tierwise_feature`), estimated input tokens,
images, tools, thinking, the triaged task type and complexity, a subagent's header (Claude Code's
`X-Claude-Code-Agent-Id`, Codex's `x-openai-subagent`), Claude Code's traffic class
(`claude_code: title|compact|subagent|web_fetch|main|side|background|any`, decided by
tierwise.clients.claude_code), any header value, or a model's live statistics on the blackboard
(`stats: {model: local, latency_p50_ms_above: 500}`, tierwise.dispatch.blackboard; no hysteresis
and no probes here — the `dynamic` policy has both). Every decision is recorded on the trace with
the rule that made it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tierwise.canonical import Request, Response, StreamChunk
from tierwise.clients import claude_code, codex
from tierwise.dispatch.blackboard_settings import StatConditions
from tierwise.dispatch.thresholds import holds, read
from tierwise.errors import ConfigError
from tierwise.policies.base import Context, Target
from tierwise.policies.registry import Builder, PolicyConfig, PolicyType, register
from tierwise.tokens import estimate_request

SUBAGENT_HEADER = "x-claude-code-agent-id"
FEATURE_HEADER = "x-tierwise-feature"


class Match(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | list[str] | None = Field(None, description="glob(s) on the requested model name")
    feature: str | list[str] | None = None
    min_input_tokens: int | None = Field(None, ge=0)
    max_input_tokens: int | None = Field(None, ge=0)
    images: bool | None = None
    tools: bool | None = None
    thinking: bool | None = None
    subagent: bool | None = Field(None, description="a coding agent's subagent request: Claude Code's "
                                  "X-Claude-Code-Agent-Id, or Codex's x-openai-subagent (not `compact`, `review`, `guardian`)")
    claude_code: str | list[str] | None = Field(
        None, description="Claude Code traffic class(es): " + ", ".join(sorted(claude_code.NAMES)))
    headers: dict[str, str] | None = Field(None, description="header name -> glob on its value")
    task_type: str | list[str] | None = Field(None, description="task type(s) from triage (tierwise.learning.triage)")
    min_complexity: float | None = Field(None, ge=0, le=1, description="triage complexity score at least this")
    max_complexity: float | None = Field(None, ge=0, le=1, description="triage complexity score at most this")
    stats: StatConditions | None = Field(None, description="live statistics of a model on the blackboard, "
                                         "e.g. {model: local, latency_p50_ms_above: 500}: every threshold holds")

    @field_validator("stats")
    @classmethod
    def _stats_model(cls, v: StatConditions | None) -> StatConditions | None:
        if v is not None and v.model is None:
            raise ValueError("name the `model` whose statistics are read")
        return v

    @field_validator("claude_code")
    @classmethod
    def _known_classes(cls, v: str | list[str] | None) -> str | list[str] | None:
        for n in [] if v is None else _globs(v):
            if n not in claude_code.NAMES:
                from tierwise.config_keys import unknown_name

                raise ValueError(unknown_name("Claude Code class", n, claude_code.NAMES))
        return v


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    match: Match
    target: str


class RulesConfig(PolicyConfig):
    policy: str = "rules"
    rules: list[Rule] = Field(default_factory=list)
    default: str = Field(description="target when no rule matches")
    reference: str | None = None


def feature_of(req: Request) -> str | None:
    return req.headers.get(FEATURE_HEADER) or (
        str(req.metadata["tierwise_feature"]) if "tierwise_feature" in req.metadata else None
    )


def _globs(v: str | list[str]) -> list[str]:
    return [v] if isinstance(v, str) else v


def thinking_requested(req: Request) -> bool:
    t = req.thinking
    return bool(t and t.get("type") not in (None, "disabled")) or bool(
        req.reasoning_effort and req.reasoning_effort not in ("none", "minimal")
    )


def matches(m: Match, req: Request, requested: str, tokens: list[int], ctx: Context | None = None) -> str | None:
    """The reason this rule matches, or None. `tokens` caches the estimate across rules."""
    why = []
    if m.model is not None:
        if not any(fnmatchcase(requested, g) for g in _globs(m.model)):
            return None
        why.append(f"model {requested!r} matches {m.model!r}")
    if m.feature is not None:
        f = feature_of(req)
        if f is None or f not in _globs(m.feature):
            return None
        why.append(f"feature {f!r}")
    if m.min_input_tokens is not None or m.max_input_tokens is not None:
        if not tokens:
            tokens.append(estimate_request(req))
        n = tokens[0]
        if m.min_input_tokens is not None and n < m.min_input_tokens:
            return None
        if m.max_input_tokens is not None and n > m.max_input_tokens:
            return None
        why.append(f"~{n} input tokens")
    if m.images is not None:
        if req.has_images() != m.images:
            return None
        why.append("images" if m.images else "no images")
    if m.tools is not None:
        if bool(req.tools) != m.tools:
            return None
        why.append("tools" if m.tools else "no tools")
    if m.thinking is not None:
        if thinking_requested(req) != m.thinking:
            return None
        why.append("thinking" if m.thinking else "no thinking")
    if m.subagent is not None:
        agent = "Claude Code subagent" if SUBAGENT_HEADER in req.headers else None
        if agent is None and codex.subagent_kind(req) is not None:  # its value is the client's: not repeated
            agent = f"Codex subagent ({codex.SUBAGENT_HEADER})"
        if (agent is not None) != m.subagent:
            return None
        why.append(agent or "not a subagent")
    if m.claude_code is not None:
        found = claude_code.classify(req)
        if found is None or found[0] not in claude_code.expand(_globs(m.claude_code)):
            return None
        why.append(f"Claude Code {found[0]} ({found[1]})")
    if m.headers:
        for h, g in m.headers.items():
            v = req.headers.get(h.lower())
            if v is None or not fnmatchcase(v, g):
                return None
            why.append(f"header {h}")
    if m.task_type is not None or m.min_complexity is not None or m.max_complexity is not None:
        from tierwise.learning.triage import triage_of  # computed only when a rule asks, once per request

        t = triage_of(req, ctx)
        if m.task_type is not None and t.task_type not in _globs(m.task_type):
            return None
        c = t.complexity.score
        if (m.min_complexity is not None and c < m.min_complexity) or (
                m.max_complexity is not None and c > m.max_complexity):
            return None
        why.append(f"task type {t.task_type}, complexity {c:.2f}")
    if m.stats is not None:
        board = getattr(ctx.services, "blackboard", None) if ctx is not None else None
        if board is None:
            return None
        model = m.stats.model or ""
        limits = m.stats.thresholds()
        if not all(holds(board.value(model, stat), side, v) for stat, side, v in limits):
            return None
        why.extend(read(board, model, t).describe() for t in limits)
    return ", ".join(why) or "matches everything"


class Rules:
    def __init__(self, name: str, rules: list[tuple[Rule, Target]], default: Target) -> None:
        self.name = name
        self.rules = rules
        self.default = default

    def choose(self, req: Request, ctx: Context) -> Target:
        requested = ctx.notes.get("requested_model", req.model)
        tokens: list[int] = []
        for i, (rule, target) in enumerate(self.rules):
            why = matches(rule.match, req, requested, tokens, ctx)
            if why is not None:
                label = rule.name or f"rule {i + 1}"
                ctx.trace.decide(self.name, f"{label}: {why} -> {target.name}", detail={"rule": label})
                return target
        ctx.trace.decide(self.name, f"no rule matched -> default {self.default.name}", detail={"rule": "default"})
        return self.default

    async def complete(self, req: Request, ctx: Context) -> Response:
        return await self.choose(req, ctx).complete(req, ctx)

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        return await self.choose(req, ctx).stream(req, ctx)


def _build(cfg: RulesConfig, name: str, b: Builder) -> Target:
    for r in cfg.rules:
        model = r.match.stats.model if r.match.stats is not None else None
        if model is not None:
            if model not in b.services.deployments:
                raise ConfigError(f"route {name!r}: stats.model {model!r} is not a model (statistics are kept per "
                                  "model)")
            b.services.board()  # the blackboard keeps statistics from now on
    return Rules(name, [(r, b.resolve(r.target)) for r in cfg.rules], b.resolve(cfg.default))


register(
    PolicyType(
        "rules",
        RulesConfig,
        _build,
        lambda c: [r.target for r in c.rules] + [c.default] + ([c.reference] if c.reference else []),
    )
)
