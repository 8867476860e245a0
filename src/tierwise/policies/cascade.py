"""Cascade: ordered tiers (cheapest first) and a verifier chain that decides when to escalate.

Tier 1 answers; the chain checks the answer; a failed verdict moves the request one tier up,
until an answer passes, the tiers run out, or `max_escalations` is reached (then the last
answer is returned, marked unverified in the trace). What the stronger tier sees is chosen
per route: the original request, or the request plus the failed draft and the verifier's
reason (`escalation_context: with_draft`), which often lets it fix rather than redo.

Streaming: a verified route cannot show the client an answer before it passed, so a
streaming request is answered in full first and then replayed as a stream. The client's
time to first token becomes the whole cascade's latency (every tier tried plus the
verifiers). Routes without verifiers, or with `verify_streams: false`, stream directly from
the first tier and escalate only when it fails before its first chunk.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from tierwise.canonical import Message, Request, Response, StreamChunk, TextBlock
from tierwise.errors import BudgetExceeded, ConfigError, ContextOverflow, UpstreamError
from tierwise.policies.base import Context, Target
from tierwise.policies.escalation import finish, mark, non_streaming, render_blocks, replay, tag_calls
from tierwise.policies.fallback import combined_overflow, prepend, should_fall_back
from tierwise.policies.registry import Builder, PolicyConfig, PolicyType, register
from tierwise.verifiers.base import Verdict, VerifierChain, VerifyContext

EscalationContext = Literal["original", "with_draft"]

WITH_DRAFT_PROMPT = (
    "The answer above was written by a smaller model and rejected by an automatic check.\n"
    "Reason: {reason}\n\n"
    "Write a complete, corrected answer to the original request. Do not mention the check."
)


class CascadeConfig(PolicyConfig):
    policy: str = "cascade"
    tiers: list[str] = Field(description="models or routes, cheapest first (at least two)")
    verifiers: list[Any] = Field(default_factory=list, description="verifier specs, run in order")
    escalation_context: EscalationContext = "original"
    max_escalations: int | None = Field(None, ge=0, description="default: one per tier above the first")
    verify_last: bool = Field(False, description="also verify the last tier's answer (for the trace)")
    verify_streams: bool = Field(True, description="false: streaming requests skip verification")
    reference: str | None = None

    @field_validator("tiers")
    @classmethod
    def _two_tiers(cls, v: list[str]) -> list[str]:
        if len(v) < 2:
            raise ValueError(
                f"a cascade needs at least two tiers to escalate between (got {len(v)}); "
                "for a single model use `policy: fallback`"
            )
        return v

    @model_validator(mode="after")
    def _verifiers_build(self) -> CascadeConfig:
        # Build once here so an unknown verifier or a bad schema fails when the config loads.
        check_verifier_specs(self.verifiers)
        return self


def check_verifier_specs(specs: list[Any], where: str = "verifiers") -> None:
    """Validate specs without building them (building may import heavy verifier modules)."""
    from tierwise.verifiers import parse_spec

    for i, spec in enumerate(specs):
        parse_spec(spec, f"{where}[{i}]")


def build_verifier_chain(specs: list[Any], services: Any = None, where: str = "verifiers") -> VerifierChain:
    """Verifier specs from config -> a chain; every problem is a ConfigError naming the spec."""
    from tierwise.verifiers import build_chain

    return build_chain(specs, services, where=where)


def judge_models(specs: list[Any]) -> list[str]:
    """Models named by LLM-judge verifiers, so config loading checks that they exist."""
    out = []
    for s in specs:
        model = s.get("model") if isinstance(s, dict) else getattr(s, "model", None)
        kind = s.get("type") if isinstance(s, dict) else getattr(s, "type", None)
        if kind == "llm_judge" and isinstance(model, str):
            out.append(model)
    return out


def verify_context(ctx: Context, tier: Target, req: Request) -> VerifyContext:
    """The helpers verifiers may use, wired to this request's trace."""

    async def sample(n: int) -> list[Response]:
        out = []
        for _ in range(n):
            start = mark(ctx)
            out.append(await tier.complete(req, ctx))
            tag_calls(ctx, start, "sample")
        return out

    async def judge(model: str, jreq: Request) -> Response:
        start = mark(ctx)
        resp = await ctx.resolve(model).complete(jreq, ctx)
        tag_calls(ctx, start, "judge")
        return resp

    embed = getattr(ctx.services, "embed", None)
    return VerifyContext(sample=sample, judge=judge, embed=embed, services=ctx.services)


def _json_safe(detail: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in detail.items():
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue
        out[k] = v
    return out


async def run_chain(chain: VerifierChain, req: Request, resp: Response, ctx: Context, tier: Target) -> Verdict:
    """Run the chain, put each verdict on the trace, return the deciding one."""
    t0 = time.perf_counter()
    verdicts = await chain.run(req, resp, verify_context(ctx, tier, req))
    ms = (time.perf_counter() - t0) * 1000
    for v in verdicts:
        ctx.trace.verdict(v.name or "verifier", v.passed, v.reason, v.score, detail=_json_safe(dict(v.detail)),
                          latency_ms=ms / max(1, len(verdicts)))
    if not verdicts:
        return Verdict(True, "no verifiers", None, chain.name)
    return verdicts[-1]


def escalated_request(req: Request, draft: Response, reason: str) -> Request:
    """The original conversation, the failed draft as the assistant's turn, and why it failed."""
    draft_text = render_blocks(draft.content) or "(empty answer)"
    return req.with_changes(
        messages=[
            *req.messages,
            Message("assistant", [TextBlock(draft_text)]),
            Message("user", [TextBlock(WITH_DRAFT_PROMPT.format(reason=reason))]),
        ]
    )


class Cascade:
    def __init__(
        self,
        name: str,
        tiers: list[Target],
        chain: VerifierChain,
        *,
        escalation_context: EscalationContext = "original",
        max_escalations: int | None = None,
        verify_last: bool = False,
        verify_streams: bool = True,
    ) -> None:
        if len(tiers) < 2:
            raise ConfigError(f"cascade {name!r} needs at least two tiers (got {len(tiers)})")
        self.name = name
        self.tiers = tiers
        self.chain = chain
        self.escalation_context = escalation_context
        self.max_escalations = len(tiers) - 1 if max_escalations is None else max_escalations
        self.verify_last = verify_last
        self.verify_streams = verify_streams

    async def complete(self, req: Request, ctx: Context) -> Response:
        req = non_streaming(req)
        current = req
        last: Response | None = None
        last_tier: Target | None = None
        last_error: UpstreamError | None = None
        escalations = 0
        overflowed: list[ContextOverflow] = []  # tiers that could not hold the request
        for i, tier in enumerate(self.tiers):
            is_last = i == len(self.tiers) - 1 or escalations >= self.max_escalations
            try:
                resp = await tier.complete(current, ctx)
            except BudgetExceeded as e:
                # A budget refused this tier's call (budgets/background.py): the answer in hand, if any, goes.
                if last is None or last_tier is None:
                    raise
                finish(ctx, last_tier.name, f"a budget refused {tier.name} ({e.message}); returning "
                       f"{last_tier.name}'s unverified answer", self.name, verified=False)
                return last
            except UpstreamError as e:
                if not should_fall_back(e) or is_last:
                    if last is not None and last_tier is not None:
                        finish(ctx, last_tier.name, f"{tier.name} failed ({e.message}); returning "
                               f"{last_tier.name}'s unverified answer", self.name, verified=False)
                        return last
                    if isinstance(e, ContextOverflow) and len(overflowed) == escalations:
                        raise combined_overflow(self.name, [*overflowed, e]) from None  # no tier holds it
                    raise
                last_error = e
                if isinstance(e, ContextOverflow):
                    overflowed.append(e)
                escalations += 1
                ctx.trace.decide(self.name, f"{tier.name} failed ({e.message}): escalating to {self.tiers[i + 1].name}",
                                 detail={"escalation": escalations})
                continue
            last, last_tier = resp, tier
            if is_last and not self.verify_last:
                why = "last tier" if i == len(self.tiers) - 1 else f"escalation cap ({self.max_escalations}) reached"
                finish(ctx, tier.name, f"{why}: {tier.name} answers unverified", self.name,
                       verified=False, escalations=escalations)
                return resp
            verdict = await run_chain(self.chain, req, resp, ctx, tier)
            if verdict.passed:
                finish(ctx, tier.name, f"{tier.name} passed verification ({verdict.reason})", self.name,
                       verified=True, escalations=escalations)
                return resp
            if is_last:
                why = "last tier" if i == len(self.tiers) - 1 else f"escalation cap ({self.max_escalations}) reached"
                finish(ctx, tier.name, f"{why}: returning {tier.name}'s answer that failed verification "
                       f"({verdict.reason})", self.name, verified=False, escalations=escalations)
                return resp
            escalations += 1
            nxt = self.tiers[i + 1]
            ctx.trace.decide(
                self.name,
                f"{tier.name} failed verification ({verdict.reason}): escalating to {nxt.name}"
                f" with {'the draft and the reason' if self.escalation_context == 'with_draft' else 'the original request'}",
                detail={"escalation": escalations, "context": self.escalation_context},
            )
            if self.escalation_context == "with_draft":
                current = escalated_request(req, resp, verdict.reason)
        # Only reachable when every tier raised and the loop ran out.
        assert last_error is not None
        raise last_error

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        if self.chain.verifiers and self.verify_streams:
            # The answer may only leave once verified: answer in full, then replay it.
            ctx.notes["buffered_stream"] = True
            resp = await self.complete(req, ctx)
            return replay(resp)
        return await self._stream_direct(req, ctx)

    async def _stream_direct(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        last: UpstreamError | None = None
        for i, tier in enumerate(self.tiers[: self.max_escalations + 1]):
            it: AsyncIterator[StreamChunk] | None = None
            try:
                it = await tier.stream(req, ctx)
                first = await it.__anext__()
            except StopAsyncIteration:
                last = UpstreamError(f"{tier.name}: empty stream", retryable=True)
                continue
            except UpstreamError as e:
                if it is not None:  # a wrapper may still hold the upstream response: let it go
                    await it.aclose()  # type: ignore[attr-defined]
                if not should_fall_back(e):
                    raise
                last = e
                ctx.trace.decide(self.name, f"{tier.name} failed before streaming ({e.message})")
                continue
            finish(ctx, tier.name, f"unverified stream from {tier.name}" + (" after escalation" if i else ""),
                   self.name, verified=False)
            return prepend(first, it)
        assert last is not None
        raise last


def _build(cfg: CascadeConfig, name: str, b: Builder) -> Target:
    chain = build_verifier_chain(cfg.verifiers, b.services) if cfg.verifiers else VerifierChain([])
    return Cascade(
        name,
        [b.resolve(t) for t in cfg.tiers],
        chain,
        escalation_context=cfg.escalation_context,
        max_escalations=cfg.max_escalations,
        verify_last=cfg.verify_last,
        verify_streams=cfg.verify_streams,
    )


register(
    PolicyType(
        "cascade",
        CascadeConfig,
        _build,
        lambda c: list(c.tiers) + judge_models(c.verifiers) + ([c.reference] if c.reference else []),
    )
)
