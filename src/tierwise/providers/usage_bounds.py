"""What an upstream's reported usage is believed to be: its counts cut to what the call can truly have used. The
upstream is not trusted to report its own bill (providers/deployment.py applies this to every call's usage)."""

from __future__ import annotations

from typing import Any

import orjson

from tierwise.canonical import TextBlock, ThinkingBlock, ToolUseBlock, Usage
from tierwise.pricing import MAX_SEARCHES
from tierwise.tokens import estimate_text_chars, text_units

__all__ = ["answer_chars", "bound_usage", "text_units"]  # web searches one answer is counted (and reserved) at most


def bound_usage(usage: Usage, caps: tuple[int, int]) -> Usage:
    """Cut the upstream's token counts (in place) to what it can truly have counted: no more output than
    the call's max_tokens (per choice), no count past the provider's `max_usage_tokens`. The upstream is not
    trusted to report its own bill: one that said 2**31 output tokens was priced at $32,212 for one
    answer of two words, a cost the budgets then charged (and token rate limits counted)."""
    cap, out_cap = caps
    if usage.output_tokens > out_cap:
        usage.output_tokens = out_cap
    if usage.input_tokens > cap:
        usage.input_tokens = cap
    if usage.cache_read_tokens > cap:
        usage.cache_read_tokens = cap
    if usage.cache_write_tokens > cap:
        usage.cache_write_tokens = cap
    if usage.cache_write_1h_tokens > usage.cache_write_tokens:  # (a part of the writes)
        usage.cache_write_1h_tokens = usage.cache_write_tokens
    if usage.web_searches > MAX_SEARCHES:
        usage.web_searches = MAX_SEARCHES
    return usage


def answer_chars(resp: Any) -> int:
    """The characters of an answer's every choice: text, tool arguments and reasoning (what a stream's deltas count),
    billed when the upstream reports no usage. Text alone was counted before review31c: an answer of tool calls
    without usage counted no output, and so none of its input either (3 choices of 3,200 characters: 0 tokens)."""
    n = 0
    for blocks in (resp.content, *(c.content for c in resp.extra_choices)):
        for b in blocks:
            if isinstance(b, TextBlock):
                n += text_units(b.text)
            elif isinstance(b, ToolUseBlock):
                n += len(orjson.dumps(b.input))
            elif isinstance(b, ThinkingBlock):
                n += text_units(b.thinking)
    return n


# Characters per output token past which a reported count is not believed: no tokenizer averages more on an answer
# (English prose ~4, code ~3, long runs of spaces a few dozen at most).
MAX_CHARS_PER_TOKEN = 32


def too_few(usage: Usage, chars: int) -> bool:
    """The upstream reported no output tokens, or fewer than the answer's characters could make. Before session 34
    (costs6) only none counted: an Anthropic-format stream whose final `message_delta` usage never came kept
    `message_start`'s placeholder of 1 output token, and a host reporting 1 token for 10,000 characters was believed
    (a $1 budget counted $0.0003 an answer; tests/budgets/test_implausible_usage.py)."""
    return usage.output_tokens * MAX_CHARS_PER_TOKEN < chars


def at_least_relayed(usage: Usage, chars: int) -> None:
    """Output tokens no fewer than the relayed characters' estimate (a stream whose usage never came:
    cut, failed, or from an upstream that reports none; budgets bill it, budgets/controller.py)."""
    out = estimate_text_chars(chars)
    if out > usage.output_tokens:
        usage.output_tokens, usage.estimated = out, True
