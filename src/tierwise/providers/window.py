"""Does a request fit a model's configured context window? Asked before the model is called.

A model with `context_window` in its config is skipped, without a call, when the request's token
estimate (tokens.py) plus the output it may write (`max_tokens`) is larger than the window: the
upstream would refuse it (vLLM, OpenAI and Anthropic count the output against the window) or cut
the answer short (llama.cpp stops when its context is full). Skipping raises `ContextOverflow`,
so a route moves on to its next target exactly as if the upstream had said so, and the trace
records a step with the reason ("skipped local: prompt ~27,053 tokens > window 4,096").

Cost on the hot path: one character count over the request, only for models with a window, and
once per request object (the estimate is kept in the request's context notes).
"""

from __future__ import annotations

from typing import Any

from tierwise.canonical import Request
from tierwise.errors import ContextOverflow
from tierwise.tokens import estimate_request

_NOTE = "prompt_estimate"


def prompt_estimate(req: Request, notes: dict[str, Any]) -> int:
    """The request's estimated input tokens, counted once per request object."""
    cached = notes.get(_NOTE)
    if cached is not None and cached[0] is req:
        return int(cached[1])
    n = estimate_request(req)
    notes[_NOTE] = (req, n)
    return n


def why_not(name: str, prompt: int, max_tokens: int | None, window: int) -> str:
    if prompt > window or not max_tokens:
        return f"skipped {name}: prompt ~{prompt:,} tokens > window {window:,}"
    return f"skipped {name}: prompt ~{prompt:,} tokens + max_tokens {max_tokens:,} > window {window:,}"


def check(name: str, window: int | None, req: Request, ctx: Any) -> None:
    """Raise ContextOverflow (and note the skip on the trace) when `req` cannot fit `window`."""
    if not window:
        return
    prompt = prompt_estimate(req, ctx.notes)
    out = req.max_tokens or 0
    if prompt + out <= window:
        return
    reason = why_not(name, prompt, out, window)
    ctx.trace.decide(name, reason, detail={"skipped": True, "estimated_tokens": prompt, "max_tokens": out or None,
                                           "context_window": window})
    raise ContextOverflow(f"model {name!r} cannot hold this request ({reason.split(': ', 1)[1]})",
                          tokens=prompt, limit=window, output=out if prompt <= window else None,
                          estimated=True, skipped=True)
