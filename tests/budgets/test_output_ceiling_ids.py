"""Ids the output ceilings table (providers/output_ceilings.py) must not read as a smaller model's (review37b). A ceiling
too low cuts an answer the upstream would have written: the request's `max_tokens` is lowered to it before the call.

- `deepseek-chat`/`deepseek-reasoner` are aliases that moved: from April 2026 DeepSeek served them from V4 Flash (up
  to 384,000 output tokens) until it retired both names on 2026-07-24; the table's 8,192 cut `deepseek-chat` answers
  at 8,192 (seen failing: sent `max_tokens` 8,192 for a request of 20,000). Hosts still map the names onward.
- OpenRouter's `:extended` variant is a larger version of its base ("extended context windows"); the table dropped
  every `:variant` and read it as the base (seen failing: `openai/gpt-4o:extended` sent `max_tokens` 16,384). Variants known to keep the base's limits
  (`:free`, `:thinking`, ...) and Bedrock's `:0` still find it.
Found as well: OpenAI fine-tunes (`ft:gpt-4o-mini-...:org::id`) had no ceiling (now their base's), and Anthropic's
`claude-opus-4-0`/`claude-sonnet-4-0` aliases none (now their snapshots')."""

from __future__ import annotations

import pytest

from tests.budgets.test_known_output_ceilings import MSG, _config
from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tierwise.providers.output_ceilings import known_output_ceiling


@pytest.mark.parametrize(("model", "ceiling"), [
    ("deepseek-chat", None),
    ("deepseek-reasoner", None),
    ("deepseek/deepseek-chat", None),
    ("openai/gpt-4o:extended", None),
    ("openai/gpt-4o:some-new-variant", None),
    ("openai/gpt-4o:free", 16384),
    ("anthropic/claude-3.7-sonnet:thinking", 128000),
    ("anthropic.claude-3-5-haiku-20241022-v1:0", 8192),
    ("ft:gpt-4o-mini-2024-07-18:acme::abc123", 16384),
    ("ft:gpt-4.1-2025-04-14:acme:support:id1", 32768),
    ("claude-opus-4-0", 32000),
    ("claude-sonnet-4-0", 64000),
    ("Claude-3-5-Haiku-Latest", 8192),
])
def test_ids_that_are_not_their_bases(model: str, ceiling: int | None):
    assert known_output_ceiling(model) == ceiling


@pytest.mark.parametrize("model", ["deepseek-chat", "openai/gpt-4o:extended"])
def test_a_larger_max_tokens_reaches_the_upstream_unlowered(gateway, openai_up, anthropic_up, model):  # noqa: F811
    g = gateway(_config(openai_up, anthropic_up, model=model))
    anthropic_up.default = Reply(text="a long answer", usage=(10, 5))
    oai(g).chat.completions.create(model="main", max_tokens=20_000, messages=MSG)
    assert anthropic_up.requests[-1].body["max_tokens"] == 20_000
