"""What an upstream's reported usage is believed to be: its counts cut to what the call can truly have used. The
upstream is not trusted to report its own bill (providers/deployment.py applies this to every call's usage)."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

from tierwise.canonical import (
    ImageBlock,
    OtherBlock,
    Request,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    Usage,
)
from tierwise.image_size import image_size
from tierwise.pdf_pages import Allowance
from tierwise.pricing import MAX_SEARCHES
from tierwise.providers.output_rate import UNSEEN_TOKENS_PER_SECOND
from tierwise.tokens import (
    PER_PDF_PAGE,
    binary_blocks,
    estimate_request,
    estimate_text_chars,
    other_counts,
    text_units,
)

__all__ = ["answer_chars", "at_least_relayed", "bound_usage", "hides_reasoning", "least_binary_input", "text_units",
           "too_few", "too_little_input", "unseen_output"]  # web searches one answer is counted (and reserved) at most


def bound_usage(usage: Usage, caps: tuple[int, int], req: Request | None = None) -> Usage:
    """Cut the upstream's token counts (in place) to what it can truly have counted: no more output than
    the call's max_tokens (per choice), no count past the provider's `max_usage_tokens`. The upstream is not
    trusted to report its own bill: one that said 2**31 output tokens was priced at $32,212 for one
    answer of two words, a cost the budgets then charged (and token rate limits counted). With `req` (what was
    sent), an input count too small for it is raised too (`too_little_input`)."""
    cap, out_cap = caps
    if req is not None:
        too_little_input(usage, req)
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


def too_little_input(usage: Usage, req: Request) -> None:
    """An input count (read, cached and written together) below what the text sent could make at
    `MAX_CHARS_PER_TOKEN` characters a token is not believed: the input is billed as tierwise estimates it
    (`tokens.estimate_request`, about 4 characters a token, images and documents counted), as an answer's characters
    are when its output count is (`too_few`). No count at all is left to the settlement (the admission's estimate,
    budgets/controller.py). Before session 37 (costs9) any count was believed: a host that reported 1 input token for
    a 40,000-character prompt was billed $0.000003 of input for what cost $0.03, and a $0.05 budget answered 10 of 10
    such requests."""
    read = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    if read == 0:
        return
    least = least_binary_input(req) * MAX_CHARS_PER_TOKEN  # (images and PDFs: costs10)
    # (the common case without building the text: the client's body has at least as many bytes as its text has
    # characters; a count that covers it covers the text)
    cl = req.headers.get("content-length")
    if (cl and cl.isdigit() and read * MAX_CHARS_PER_TOKEN >= int(cl) + least
            or read * MAX_CHARS_PER_TOKEN >= len(req.text()) + least):
        return
    est = estimate_request(req) - usage.cache_read_tokens - usage.cache_write_tokens
    if est > usage.input_tokens:
        usage.input_tokens, usage.estimated = est, True


# The fewest input tokens a provider bills an image (by its size: below 64 only for images under 256x256 pixels) and a
# PDF's page (the image of it they all add: Gemini 258 a page, Anthropic and OpenAI about 1,000 or more for a letter
# page), with a margin: an upstream's count below them is not believed (costs10; before, 1 input token for a
# 100-page PDF or 50 large images was billed as reported). Far below honest counts, and below `tokens.PER_IMAGE` and
# `tokens.PER_PDF_PAGE`, what is reserved.
LEAST_IMAGE_TOKENS = 64
LEAST_PAGE_TOKENS = 128
_LONGEST_EDGE = 1568  # (Anthropic scales an image down to it: an 8000x10 image is billed as 1568x2)


def least_binary_input(req: Request) -> int:
    """The fewest input tokens a request's inline images (by their sizes, `image_size`) and PDF pages
    (`tokens.other_counts`, counted once a request) can be billed. Images by URL count none (a URL can name a
    one-pixel image), nor PDFs when the client names a parsing engine (OpenRouter's `plugins`: its free text
    engine bills a scanned page's text, none)."""
    n = 0
    allow: list[Allowance] = []  # (one inflate allowance for the request's PDFs)
    for b in binary_blocks(req):
        n += _least_image(b) if type(b) is ImageBlock else _least_pages(b, req, allow)  # type: ignore[arg-type]
    return n


def _least_pages(b: OtherBlock, req: Request, allow: list[Allowance]) -> int:
    if "plugins" in req.extra:
        return 0
    return LEAST_PAGE_TOKENS * (other_counts(b, allow)[2] // PER_PDF_PAGE)


def _least_image(b: ImageBlock) -> int:
    size = image_size(b.data) if b.data else None
    if size is None:
        return 0
    w, h = size
    edge = max(w, h)
    if edge > _LONGEST_EDGE:
        w, h = w * _LONGEST_EDGE // edge, h * _LONGEST_EDGE // edge
    return min(LEAST_IMAGE_TOKENS, w * h // 1024)


def at_least_relayed(usage: Usage, chars: int) -> None:
    """Output tokens no fewer than the relayed characters' estimate (a stream whose usage never came:
    cut, failed, or from an upstream that reports none; budgets bill it, budgets/controller.py)."""
    out = estimate_text_chars(chars)
    if out > usage.output_tokens:
        usage.output_tokens, usage.estimated = out, True


# The fastest a hosted model writes, in tokens a second, with a margin: what a call cut before its usage came can
# have written that nobody saw. OpenAI's reasoning models and Gemini 2.5 write ~100-400 tokens a second, Claude
# ~50-100; hosts on custom silicon reach 1,000-3,000 (their reasoning is streamed as text, counted as relayed).
# A model's own rate, configured or measured, replaces it (providers/output_rate.py).

# Models that reason in tokens they bill and do not stream, without being asked (`models.<m>.hidden_reasoning`
# says otherwise): OpenAI's o-series and gpt-5 (not gpt-5-chat), Gemini 2.5 Pro/Flash and 3 (thinking on by default).
_REASONS_UNASKED = re.compile(r"(?:^|/)(?:o[134](?:-|$)|gpt-5(?!.*-chat)|gemini-(?:2\.5-(?:pro|flash(?!-lite))|3))")


def hides_reasoning(req: Request, model: str, configured: bool | None) -> bool:
    """Does a call write output it does not stream (hidden reasoning: OpenAI's reasoning tokens, Gemini's thoughts,
    Claude 4's thinking, billed in full and streamed as a summary)? `configured`: the model's `hidden_reasoning`."""
    if configured is not None:
        return configured
    if req.reasoning_effort and req.reasoning_effort != "none":
        return True
    t = req.thinking
    if isinstance(t, dict) and t.get("type") not in (None, "disabled"):
        return True
    return _REASONS_UNASKED.search(model) is not None


def unseen_output(usage: Usage, since: float, out_cap: int, per_second: float = UNSEEN_TOKENS_PER_SECOND) -> None:
    """Output tokens no fewer than what the call can have written since `since` (time.perf_counter) and nobody saw:
    a non-streamed call, or a stream of hidden reasoning, cut before its usage came (the client left, the upstream
    stalled or cut it). The provider bills what was written; nothing reports how much. Before session 36 (costs8)
    such a call counted its input only (and a stream its visible characters ÷ 4): a client leaving each reasoning
    stream before its answer spent what the budget never counted. At most the call's output cap. `per_second`: how
    fast the model writes (providers/output_rate.py: its config's, or measured; 1,000 tokens a second by default)."""
    written = min(out_cap, int((time.perf_counter() - since) * per_second) + 1)
    if written > usage.output_tokens:
        usage.output_tokens, usage.estimated = written, True
