"""The output ceilings of known hosted models: the most answer tokens one call can write, as the providers publish
them. A remote model whose config sets no `max_output_tokens` gets its entry here, so a client's larger `max_tokens`
is lowered to it before the call and a budget reserves no more than it (budgets/controller.py). Without the table a
request asking `max_tokens: 131072` of claude-3-5-haiku (which writes at most 8,192) reserved sixteen times what the
answer could cost, and held it while it ran (docs/budgets.md, "Admission").

An entry errs high where a provider lists two numbers (Claude 3.7 Sonnet writes 128,000 behind a beta header, 64,000
without): a ceiling too low would cut answers the upstream allows, one too high only reserves more. An id the table
does not know has no ceiling, as before; `models.<name>.max_output_tokens` overrides any entry.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Normalised ids (lower case, the provider's prefix and version suffixes dropped, dots written as dashes) -> tokens.
# Sources: Anthropic's models overview (current and legacy tables), OpenAI's model pages, Google's Gemini model
# pages, DeepSeek's pricing page.
KNOWN_OUTPUT_CEILINGS: dict[str, int] = {
    # Anthropic
    "claude-3-haiku": 4_096,
    "claude-3-opus": 4_096,
    "claude-3-sonnet": 4_096,
    "claude-3-5-haiku": 8_192,
    "claude-3-5-sonnet": 8_192,
    "claude-3-7-sonnet": 128_000,  # (64,000; 128,000 with the output-128k beta header)
    "claude-sonnet-4": 64_000,
    "claude-opus-4": 32_000,
    "claude-opus-4-1": 32_000,
    "claude-sonnet-4-5": 64_000,
    "claude-haiku-4-5": 64_000,
    "claude-opus-4-5": 64_000,
    "claude-sonnet-4-6": 128_000,
    "claude-opus-4-6": 128_000,
    "claude-opus-4-7": 128_000,
    "claude-opus-4-8": 128_000,
    # OpenAI
    "gpt-3-5-turbo": 4_096,
    "gpt-4-turbo": 4_096,
    "gpt-4o": 16_384,
    "gpt-4o-2024-05-13": 4_096,  # (the first snapshot; later ones write 16,384)
    "chatgpt-4o": 16_384,
    "gpt-4o-mini": 16_384,
    "gpt-4-1": 32_768,
    "gpt-4-1-mini": 32_768,
    "gpt-4-1-nano": 32_768,
    "o1": 100_000,
    "o1-pro": 100_000,
    "o1-mini": 65_536,
    "o1-preview": 32_768,
    "o3": 100_000,
    "o3-pro": 100_000,
    "o3-mini": 100_000,
    "o4-mini": 100_000,
    "gpt-5": 128_000,
    "gpt-5-mini": 128_000,
    "gpt-5-nano": 128_000,
    "gpt-5-codex": 128_000,
    "gpt-5-chat": 16_384,
    "gpt-5-1": 128_000,
    # Google
    "gemini-1-5-pro": 8_192,
    "gemini-1-5-flash": 8_192,
    "gemini-2-0-flash": 8_192,
    "gemini-2-0-flash-lite": 8_192,
    "gemini-2-5-pro": 65_536,
    "gemini-2-5-flash": 65_536,
    "gemini-2-5-flash-lite": 65_536,
    # (No DeepSeek: `deepseek-chat`/`deepseek-reasoner` are aliases that moved. From April 2026 they answered from
    # DeepSeek V4 Flash, up to 384,000 output tokens, until DeepSeek retired both names on 2026-07-24; a ceiling of
    # 8,192 cut those answers at 8,192. Other hosts still map the names to newer models. review37b.)
    "claude-opus-4-0": 32_000,  # (Anthropic's aliases of the first Claude 4 snapshots)
    "claude-sonnet-4-0": 64_000,
}

# OpenRouter's variants (`:free`, `:thinking`, ...) served within the model's own limits; any other (`:extended`,
# "model versions with extended context windows" in OpenRouter's words) or one not known yet may write more than
# the base model, so it has no ceiling from the table. Bedrock's `:0` is a version.
_SAME_LIMITS = frozenset({"free", "thinking", "beta", "nitro", "floor", "online", "exacto"})

# A version suffix dropped before the next look-up: a date (20241022, 2024-08-06, 05-20), -v2, -latest, -preview,
# -exp, -001. Dropped one at a time from the end, so an entry for a dated snapshot is found before its family's.
_SUFFIX = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2}|\d{2}-\d{2}|v\d+|latest|preview|exp|\d{3})$")


@lru_cache(maxsize=1024)
def known_output_ceiling(model: str) -> int | None:
    """The published output ceiling of the hosted model `model` (an id as an upstream takes it: `claude-3-5-haiku-
    20241022`, OpenRouter's `anthropic/claude-3.5-haiku`, Bedrock's `us.anthropic.claude-3-5-haiku-20241022-v1:0`,
    Vertex's `claude-3-5-haiku@20241022`), or None when the table does not know it."""
    s = model.strip().lower()
    fine_tune = s.startswith("ft:")  # OpenAI's `ft:<base>:<org>:<name>:<id>` writes what its base model does
    s, _, variant = s.removeprefix("ft:").rsplit("/", 1)[-1].partition(":")
    if variant and not fine_tune and not variant.isdigit() and variant not in _SAME_LIMITS:
        return None
    s = s.split("@", 1)[0]
    if "claude-" in s:  # (Bedrock's `<region>.anthropic.` prefix)
        s = s[s.index("claude-"):]
    s = s.replace(".", "-")
    while True:
        found = KNOWN_OUTPUT_CEILINGS.get(s)
        if found is not None:
            return found
        shorter = _SUFFIX.sub("", s)
        if shorter == s:
            return None
        s = shorter


def output_ceiling(configured: int | None, model: str, remote: bool) -> int | None:
    """A deployment's output ceiling: its config's `max_output_tokens`, else the table's for a remote model (a local
    server's ceiling is its own, whatever the id it serves under)."""
    if configured is not None or not remote:
        return configured
    return known_output_ceiling(model)
