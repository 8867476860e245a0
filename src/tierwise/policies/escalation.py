"""Pieces the escalation policies share (cascade, draft-and-verify, advisor, specialist).

- marking auxiliary model calls on the trace (a verifier call, an advisor consultation, a
  summary) so the ledger can tell them from the call that produced the answer;
- replaying a finished `Response` as canonical stream events, for routes that must see the
  whole answer before the client may (verified streaming);
- rendering a conversation as plain text, and the context-passing strategies (full
  transcript, the last N turns, a local summary of the earlier turns).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import orjson

from tierwise.canonical import (
    Block,
    BlockDelta,
    BlockStart,
    BlockStop,
    ImageBlock,
    Message,
    MessageDelta,
    MessageStart,
    MessageStop,
    OtherBlock,
    RedactedThinkingBlock,
    Request,
    Response,
    StreamChunk,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from tierwise.errors import ConfigError
from tierwise.policies.base import Context, Target
from tierwise.trace import Step

ContextStrategy = Literal["full", "summary", "last_n"]

# ---------------------------------------------------------------------------- trace helpers


def mark(ctx: Context) -> int:
    """Where the trace stands now; pass it to `tag_calls` after an auxiliary call."""
    return len(ctx.trace.steps)


def tag_calls(ctx: Context, start: int, role: str) -> list[Step]:
    """Label the call steps recorded since `start` with `detail.role` (verify, advisor, summary...).

    Calls without a role produced the answer; the others are overhead the ledger should
    count (tokens, cost) but never name as the model that answered.
    """
    steps = [s for s in ctx.trace.steps[start:] if s.kind == "call"]
    for s in steps:
        s.detail.setdefault("role", role)
    return steps


def usage_and_cost(steps: list[Step]) -> tuple[Usage, float]:
    u = Usage()
    total = 0.0
    for s in steps:
        if s.usage is not None:
            u.add(s.usage)
        total += s.cost or 0.0
    return u, total


def finish(ctx: Context, answered_by: str, reason: str, policy: str, **detail: Any) -> None:
    """Record the final decision of a policy: who answered and why."""
    ctx.trace.decision = answered_by
    ctx.trace.decide(policy, reason, detail=detail)


# ---------------------------------------------------------------------------- streams


def response_events(resp: Response) -> list[StreamEvent]:
    """The canonical event sequence a streaming upstream would have sent for `resp`."""
    events: list[StreamEvent] = [
        MessageStart(resp.id, resp.model, Usage(input_tokens=resp.usage.input_tokens,
                                                cache_read_tokens=resp.usage.cache_read_tokens,
                                                cache_write_tokens=resp.usage.cache_write_tokens,
                                                cache_write_1h_tokens=resp.usage.cache_write_1h_tokens))
    ]
    for i, b in enumerate(resp.content):
        if isinstance(b, TextBlock):
            events.append(BlockStart(i, TextBlock("")))
            if b.text:
                events.append(BlockDelta(i, "text", b.text))
        elif isinstance(b, ToolUseBlock):
            events.append(BlockStart(i, ToolUseBlock(b.id, b.name, {}, server=b.server)))
            events.append(BlockDelta(i, "input_json", orjson.dumps(b.input).decode()))
        elif isinstance(b, ThinkingBlock):
            events.append(BlockStart(i, ThinkingBlock("")))
            if b.thinking:
                events.append(BlockDelta(i, "thinking", b.thinking))
            if b.signature:
                events.append(BlockDelta(i, "signature", b.signature))
        else:  # redacted thinking, opaque blocks: they arrive whole in their start event
            events.append(BlockStart(i, b))
        events.append(BlockStop(i))
    events.append(MessageDelta(resp.stop_reason, Usage(output_tokens=resp.usage.output_tokens),
                               resp.stop_sequence))
    events.append(MessageStop())
    return events


async def replay(resp: Response) -> AsyncIterator[StreamChunk]:
    """Stream a finished answer: one chunk per event, so encoders emit their usual framing."""
    for ev in response_events(resp):
        yield StreamChunk([ev])


def non_streaming(req: Request) -> Request:
    """The request as a single-shot call (the pass-through body would still say stream=true)."""
    return req.with_changes(stream=False) if req.stream else req


# ---------------------------------------------------------------------------- rendering


def render_block(b: Block) -> str:
    if isinstance(b, TextBlock):
        return b.text
    if isinstance(b, ImageBlock):
        return "[image]"
    if isinstance(b, ToolUseBlock):
        return f"[called tool {b.name} with {orjson.dumps(b.input).decode()}]"
    if isinstance(b, ToolResultBlock):
        inner = " ".join(render_block(c) for c in b.content)
        return f"[tool result{' (error)' if b.is_error else ''}: {inner}]"
    if isinstance(b, ThinkingBlock | RedactedThinkingBlock):
        return ""  # private reasoning is not part of what the next model should read
    if isinstance(b, OtherBlock):
        if b.raw.get("type") == "advisor_tool_result":
            content = b.raw.get("content") or {}
            return f"[advisor: {content.get('text', '') if isinstance(content, dict) else ''}]"
        return ""
    return ""


def render_blocks(blocks: list[Block]) -> str:
    return "\n".join(t for t in (render_block(b) for b in blocks) if t)


def render_transcript(messages: list[Message], system: list[TextBlock] | None = None) -> str:
    parts = []
    if system:
        parts.append("SYSTEM: " + "\n".join(b.text for b in system))
    for m in messages:
        text = render_blocks(m.content)
        if text:
            parts.append(f"{m.role.upper()}: {text}")
    return "\n\n".join(parts)


def text_request(req: Request, prompt: str, *, system: str | None = None, max_tokens: int | None = None) -> Request:
    """A fresh single-turn text request that keeps nothing of `req` but its headers."""
    return Request(
        model=req.model,
        messages=[Message("user", [TextBlock(prompt)])],
        system=[TextBlock(system)] if system else [],
        max_tokens=max_tokens,
        temperature=0.0,
        headers={k: v for k, v in req.headers.items() if k.startswith("anthropic-")},
    )


# ---------------------------------------------------------------------------- context passing


def _is_tool_result_turn(m: Message) -> bool:
    return m.role == "user" and any(isinstance(b, ToolResultBlock) for b in m.content)


def turn_starts(messages: list[Message]) -> list[int]:
    """Indexes of user messages that open a turn (a tool result continues the previous turn)."""
    return [i for i, m in enumerate(messages) if m.role == "user" and not _is_tool_result_turn(m)]


def last_turns(messages: list[Message], n: int) -> tuple[list[Message], list[Message]]:
    """Split into (earlier, last n turns); the kept part starts at a user turn so tool
    calls and their results are never separated."""
    starts = turn_starts(messages)
    if n <= 0 or not starts:
        return [], list(messages)
    cut = starts[-n] if len(starts) >= n else starts[0]
    return list(messages[:cut]), list(messages[cut:])


SUMMARY_SYSTEM = (
    "You summarise conversations for another assistant that will continue them. Keep facts, "
    "decisions, names, numbers, code identifiers and open questions; drop pleasantries. Plain text."
)


async def summarise(req: Request, earlier: list[Message], summariser: Target, ctx: Context,
                    max_tokens: int = 512) -> str:
    prompt = "Summarise this conversation so far:\n\n" + render_transcript(earlier)
    start = mark(ctx)
    resp = await summariser.complete(text_request(req, prompt, system=SUMMARY_SYSTEM, max_tokens=max_tokens), ctx)
    tag_calls(ctx, start, "summary")
    return resp.text().strip()


async def pass_context(
    req: Request,
    strategy: ContextStrategy,
    ctx: Context,
    *,
    last_n: int = 2,
    summariser: Target | None = None,
) -> Request:
    """The request the next model should see under `strategy` (a copy; `req` is untouched)."""
    if strategy == "full":
        return req
    earlier, kept = last_turns(req.messages, last_n if strategy == "last_n" else 1)
    if not earlier:
        return req
    if strategy == "last_n":
        return req.with_changes(messages=kept)
    if summariser is None:
        raise ConfigError("context strategy 'summary' needs a summariser model")
    summary = await summarise(req, earlier, summariser, ctx)
    note = TextBlock(f"Summary of the earlier conversation (written by a local model):\n{summary}")
    return req.with_changes(messages=kept, system=[*req.system, note])


Detector = Callable[[Request], bool]


def import_callable(path: str) -> Callable[..., Any]:
    """`package.module:function` -> the function; a clear ConfigError when it is not there."""
    import importlib

    mod_name, sep, attr = path.partition(":")
    if not sep or not mod_name or not attr:
        raise ConfigError(f"{path!r} is not of the form 'package.module:function'")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise ConfigError(f"cannot import module {mod_name!r} ({e.__class__.__name__})") from None
    fn = getattr(mod, attr, None)
    if not callable(fn):
        raise ConfigError(f"{path!r}: module {mod_name!r} has no callable {attr!r}")
    return fn  # type: ignore[no-any-return]
