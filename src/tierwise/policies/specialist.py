"""Specialist hand-off: send a request to the model that has the capability the local model
lacks, with a chosen way of passing the conversation along.

Triggers, checked in the order the specialists are listed:
- `images`: the request carries images and the default model has no vision;
- `long_context`: the estimated input (plus the requested output) does not fit the default
  model's context window (from its config traits, or `max_input_tokens` on the route);
- a detector on the latest user text: a regex, keywords, or a Python callable
  (`package.module:function`, called with the canonical request, returning a bool).

Context passing per specialist: `full` (the whole transcript), `last_n` (the last N user
turns, never splitting a tool call from its result) or `summary` (the local model
summarises the earlier turns; the specialist gets that summary plus the latest turn).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tierwise.canonical import Request, Response, StreamChunk
from tierwise.errors import ConfigError, ContextOverflow
from tierwise.policies.base import Context, Target
from tierwise.policies.escalation import ContextStrategy, import_callable, pass_context
from tierwise.policies.registry import Builder, PolicyConfig, PolicyType, register
from tierwise.tokens import estimate_request

# ---------------------------------------------------------------------------- config


class DetectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    regex: str | None = Field(None, description="matches the latest user text (case-insensitive)")
    keywords: list[str] | None = Field(None, description="any of these words in the latest user text")
    callable: str | None = Field(None, description="package.module:function taking the request, returning bool")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a valid regular expression: {e}") from None
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> DetectorConfig:
        if sum(x is not None for x in (self.regex, self.keywords, self.callable)) != 1:
            raise ValueError("a detector needs exactly one of: regex, keywords, callable")
        if self.callable is not None:
            import_callable(self.callable)  # fail at start, not on the first request
        return self


class SpecialistConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    target: str
    images: bool = Field(False, description="take requests with images when the default model lacks vision")
    long_context: bool = Field(False, description="take requests that do not fit the default model's window")
    detect: DetectorConfig | None = None
    context: ContextStrategy = "full"
    last_n: int = Field(2, ge=1, description="turns kept by `context: last_n`")

    @model_validator(mode="after")
    def _has_trigger(self) -> SpecialistConfig:
        if not (self.images or self.long_context or self.detect):
            raise ValueError("a specialist needs a trigger: images, long_context or detect")
        return self


class HandoffConfig(PolicyConfig):
    policy: str = "specialist"
    default: str = Field(description="the (local) model that answers when no specialist is needed")
    specialists: list[SpecialistConfig] = Field(min_length=1)
    summariser: str | None = Field(None, description="model for `context: summary` (default: the default model)")
    max_input_tokens: int | None = Field(None, ge=1, description="override of the default model's context window")
    reference: str | None = None


# ---------------------------------------------------------------------------- runtime

def detector(cfg: DetectorConfig) -> Callable[[Request], str | None]:
    """A function from the request to the reason it matched, or None."""
    if cfg.regex is not None:
        rx = re.compile(cfg.regex, re.IGNORECASE)

        def by_regex(req: Request) -> str | None:
            m = rx.search(req.last_user_text())
            return f"matched /{cfg.regex}/ at {m.group(0)[:40]!r}" if m else None

        return by_regex
    if cfg.keywords is not None:
        words = [re.compile(rf"\b{re.escape(w)}\b", re.IGNORECASE) for w in cfg.keywords]

        def by_keyword(req: Request) -> str | None:
            text = req.last_user_text()
            for w, rx in zip(cfg.keywords or [], words, strict=True):
                if rx.search(text):
                    return f"keyword {w!r}"
            return None

        return by_keyword
    assert cfg.callable is not None
    fn = import_callable(cfg.callable)

    def by_callable(req: Request) -> str | None:
        return f"{cfg.callable} said yes" if fn(req) else None

    return by_callable


@dataclass(slots=True)
class Specialist:
    label: str
    target: Target
    images: bool = False
    long_context: bool = False
    detect: Callable[[Request], str | None] | None = None
    context: ContextStrategy = "full"
    last_n: int = 2


def trait(target: Target, name: str) -> Any:
    """A capability trait of a target when it is a deployment (context_window, vision)."""
    cfg = getattr(target, "cfg", None)
    return getattr(cfg, name, None)


class Handoff:
    def __init__(
        self,
        name: str,
        default: Target,
        specialists: list[Specialist],
        *,
        summariser: Target | None = None,
        max_input_tokens: int | None = None,
    ) -> None:
        self.name = name
        self.default = default
        self.specialists = specialists
        self.summariser = summariser or default
        self.window = max_input_tokens or trait(default, "context_window")
        self.default_has_vision = bool(trait(default, "vision"))

    def why(self, s: Specialist, req: Request) -> str | None:
        if s.images and req.has_images() and not self.default_has_vision:
            return f"images, and {self.default.name} has no vision"
        if s.long_context and self.window:
            need = estimate_request(req) + (req.max_tokens or 0)
            if need > self.window:
                return f"~{need} tokens (input + max output) exceed {self.default.name}'s window of {self.window}"
        if s.detect is not None:
            return s.detect(req)
        return None

    async def choose(self, req: Request, ctx: Context) -> tuple[Target, Request]:
        for s in self.specialists:
            reason = self.why(s, req)
            if reason is None:
                continue
            handed = await pass_context(req, s.context, ctx, last_n=s.last_n, summariser=self.summariser)
            kept = f"{len(handed.messages)} of {len(req.messages)} messages"
            ctx.trace.decide(
                self.name,
                f"{s.label}: {reason} -> {s.target.name} (context: {s.context}, {kept})",
                detail={"specialist": s.label, "context": s.context},
            )
            ctx.trace.decision = s.target.name
            return s.target, handed
        ctx.trace.decide(self.name, f"no specialist needed -> {self.default.name}", detail={"specialist": None})
        return self.default, req

    async def complete(self, req: Request, ctx: Context) -> Response:
        target, handed = await self.choose(req, ctx)
        tried = [target]
        while True:
            try:
                return await target.complete(handed, ctx)
            except ContextOverflow as e:
                target, handed = await self._after_overflow(req, ctx, tried, e)

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        target, handed = await self.choose(req, ctx)
        tried = [target]
        while True:
            try:
                return await target.stream(handed, ctx)
            except ContextOverflow as e:
                target, handed = await self._after_overflow(req, ctx, tried, e)

    async def _after_overflow(self, req: Request, ctx: Context, tried: list[Target],
                              err: ContextOverflow) -> tuple[Target, Request]:
        """The chosen model cannot hold the request: hand it to the next specialist that may
        (long-context specialists first, then the others in order), or give up with the overflow."""
        order = [s for s in self.specialists if s.long_context] + [s for s in self.specialists if not s.long_context]
        for s in order:
            if any(s.target is t for t in tried):
                continue
            tried.append(s.target)
            context = s.context
            try:
                handed = await pass_context(req, context, ctx, last_n=s.last_n, summariser=self.summariser)
            except ContextOverflow:  # the summariser cannot hold it either: pass the conversation whole
                context, handed = "full", req
            ctx.trace.decide(self.name, f"{tried[-2].name} cannot hold the request ({err.message}) -> "
                             f"{s.target.name} (context: {context})",
                             detail={"specialist": s.label, "context": context, "overflow": True})
            ctx.trace.decision = s.target.name
            return s.target, handed
        raise err


def _build(cfg: HandoffConfig, name: str, b: Builder) -> Target:
    specs = []
    for i, s in enumerate(cfg.specialists):
        specs.append(
            Specialist(
                label=s.name or f"specialist {i + 1}",
                target=b.resolve(s.target),
                images=s.images,
                long_context=s.long_context,
                detect=detector(s.detect) if s.detect else None,
                context=s.context,
                last_n=s.last_n,
            )
        )
    default = b.resolve(cfg.default)
    if any(s.long_context for s in specs) and not (cfg.max_input_tokens or trait(default, "context_window")):
        raise ConfigError(
            f"route {name!r}: a long_context specialist needs the default model's context_window "
            "(set it on the model, or max_input_tokens on the route)"
        )
    return Handoff(
        name,
        default,
        specs,
        summariser=b.resolve(cfg.summariser) if cfg.summariser else None,
        max_input_tokens=cfg.max_input_tokens,
    )


register(
    PolicyType(
        "specialist",
        HandoffConfig,
        _build,
        lambda c: [c.default]
        + [s.target for s in c.specialists]
        + ([c.summariser] if c.summariser else [])
        + ([c.reference] if c.reference else []),
    )
)
