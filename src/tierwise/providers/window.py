"""Does a request fit a model's configured context window and its `vision` flag? Asked before the
model is called.

A model with `context_window` in its config is skipped, without a call, when the request's token
estimate (tokens.py) leaves the model less room to answer than `MIN_OUTPUT` tokens (or than the
client's `max_tokens`, if smaller). Skipping raises `ContextOverflow`, so a route moves on to its
next target exactly as if the upstream had said so, and the trace records a step with the reason
("skipped local: prompt ~27,053 tokens > window 4,096").

When the prompt fits with that room but the client's `max_tokens` is larger than what is left
(coding agents ask for 32,000 and more on every turn), the model is called with `max_tokens`
lowered to the room left: vLLM, OpenAI and Anthropic would refuse prompt + max_tokens > window,
and llama.cpp would stop at the end of its context anyway. The trace says so ("local: max_tokens
32,000 -> 12,417 to fit window 16,384"). A request whose thinking budget needs more than the room
is skipped instead (the budget must stay below max_tokens).

Cost on the hot path: one character count over the request, only for models with a window, and
once per request object (the estimate is kept in the request's context notes).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NoReturn

from tierwise.canonical import Request
from tierwise.errors import ContextOverflow, UnsupportedInput
from tierwise.providers.output_ceilings import output_ceiling as output_ceiling  # (Deployment's, re-exported)
from tierwise.tokens import estimate_request

_NOTE = "prompt_estimate"
# Room for the answer a model must have after the prompt to be worth calling (tokens).
MIN_OUTPUT = 1024


def prompt_estimate(req: Request, notes: dict[str, Any]) -> int:
    """The request's estimated input tokens, counted once per request object."""
    cached = notes.get(_NOTE)
    if cached is not None and cached[0] is req:
        return int(cached[1])
    n = estimate_request(req)
    notes[_NOTE] = (req, n)
    return n


def default_output(name: str, default: int, window: int | None, req: Request, ctx: Any) -> Request:
    """`req` (which `fit` has passed) with the model's `default_max_tokens` when the client set none, within what
    `window` leaves after the prompt: vLLM and OpenAI refuse prompt + max_tokens past the window, and the route
    would move on for nothing. Less room than the default and than `MIN_OUTPUT` skips the model, as a client's own
    max_tokens would (before, a prompt that all but filled the window went out with max_tokens 1: a one-token
    answer, `finish_reason: length`, taken as the model's)."""
    if not window:
        return req.with_changes(max_tokens=default)
    prompt = prompt_estimate(req, ctx.notes)
    if window - prompt >= min(default, MIN_OUTPUT):
        return req.with_changes(max_tokens=min(default, window - prompt))
    skip(name, prompt, default, window, ctx)


def why_not(name: str, prompt: int, max_tokens: int | None, window: int) -> str:
    if prompt > window or not max_tokens:
        return f"skipped {name}: prompt ~{prompt:,} tokens > window {window:,}"
    return f"skipped {name}: prompt ~{prompt:,} tokens + max_tokens {max_tokens:,} > window {window:,}"


def check_images(name: str, vision: bool | None, req: Request, ctx: Any) -> None:
    """A model configured `vision: false` is skipped, without a call, for a request with images: the
    upstream would refuse it (llama.cpp without a projector answers 500), and the retry and the
    breaker failure that would follow say nothing about the model's health. Unset: tried."""
    if vision is not False or not req.has_images():
        return
    reason = f"skipped {name}: the request has images and the model is configured vision: false"
    ctx.trace.decide(name, reason, detail={"skipped": True, "images": True})
    raise UnsupportedInput(f"model {name!r} does not take images (vision: false in its config)")


def fit(name: str, window: int | None, req: Request, ctx: Any, max_output: int | None = None) -> Request:
    """`req` as it can be sent to a model with `window` and `max_output` (the model's `max_output_tokens`): itself,
    or a copy with `max_tokens` lowered; ContextOverflow (noted on the trace) when the window cannot hold it."""
    if max_output is not None and req.max_tokens is not None and req.max_tokens > max_output:
        # The upstream refuses (OpenAI, Anthropic: 400) or stops at its own limit; and a budget reserved no more than
        # this (budgets/controller.py): a call sent with more could write past its reservation.
        budget = req.thinking.get("budget_tokens") if isinstance(req.thinking, dict) else None
        if isinstance(budget, int) and budget >= max_output:  # (the budget must stay below max_tokens: a 400)
            reason = (f"skipped {name}: thinking.budget_tokens {budget:,} >= the model's max_output_tokens "
                      f"{max_output:,}")
            ctx.trace.decide(name, reason, detail={"skipped": True, "thinking_budget": budget,
                                                   "max_output_tokens": max_output})
            raise UnsupportedInput(f"model {name!r} writes at most {max_output:,} tokens (its max_output_tokens: the "
                                   f"config's, or tierwise's table of known models'): thinking.budget_tokens "
                                   f"{budget:,} must be below that")
        routing_reason = ctx.trace.reason
        ctx.trace.decide(name, f"{name}: max_tokens {req.max_tokens:,} -> {max_output:,} (the model's "
                         "max_output_tokens)", detail={"clamped": True, "max_tokens": req.max_tokens,
                                                       "max_output_tokens": max_output})
        ctx.trace.reason = routing_reason
        req = lowered(req, max_output)
    if not window:
        return req
    prompt = prompt_estimate(req, ctx.notes)
    out = req.max_tokens or 0
    if prompt + out <= window:
        return req
    room = window - prompt
    thinking = req.thinking.get("budget_tokens") if isinstance(req.thinking, dict) else None
    if out and room >= min(out, MIN_OUTPUT) and not (isinstance(thinking, int) and thinking >= room):
        trace = ctx.trace
        routing_reason = trace.reason  # a step, not the route's reason for its choice
        trace.decide(name, f"{name}: max_tokens {out:,} -> {room:,} to fit window {window:,}",
                     detail={"clamped": True, "estimated_tokens": prompt, "max_tokens": out, "context_window": window})
        trace.reason = routing_reason
        return lowered(req, room)
    skip(name, prompt, out, window, ctx)


def lowered(req: Request, max_tokens: int) -> Request:
    """`req` with `max_tokens` lowered, its same-format body kept: the encoders lower the body's own fields to it
    (wire/*/request_encode.py). Re-encoded instead (`with_changes`), an OpenAI body's `max_completion_tokens`
    went out as `max_tokens`, which OpenAI's reasoning models refuse (400), and its forwarded fields (`seed`,
    `logit_bias`, `prompt_cache_key`, ...) were dropped."""
    return replace(req, max_tokens=max_tokens)


def skip(name: str, prompt: int, out: int, window: int, ctx: Any) -> NoReturn:
    """ContextOverflow, noted on the trace: the model cannot hold the prompt and `out` tokens of answer."""
    reason = why_not(name, prompt, out, window)
    ctx.trace.decide(name, reason, detail={"skipped": True, "estimated_tokens": prompt, "max_tokens": out or None,
                                           "context_window": window})
    raise ContextOverflow(f"model {name!r} cannot hold this request ({reason.split(': ', 1)[1]})",
                          tokens=prompt, limit=window, output=out if prompt <= window else None,
                          estimated=True, skipped=True)
