"""The shipped table of known models' output ceilings (providers/output_ceilings.py, session 37, costs9). Before it, only
a model whose config set `max_output_tokens` had a ceiling: a request asking `max_tokens: 100000` of claude-3-5-haiku
(which writes at most 8,192) reserved 100,000 output tokens ($1.50 at $15 per million, past a $1 budget), and every
other client was refused as "held by requests in flight" while it ran, for an answer that could never cost more than
$0.12 (and that the upstream would have refused). Now a remote model's id found in the table has that ceiling unless
its config says otherwise."""

from __future__ import annotations

import anthropic
import pytest

from tests.budgets.frontier_spend import frontier_config, held_request, second_answered_beside_held
from tests.doubles import Reply
from tests.gateway.conftest import ant, anthropic_up, gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tierwise.providers.output_ceilings import known_output_ceiling

MSG = [{"role": "user", "content": "q"}]


@pytest.mark.parametrize(("model", "ceiling"), [
    ("claude-3-5-haiku-20241022", 8192),
    ("anthropic/claude-3.5-haiku", 8192),  # OpenRouter
    ("us.anthropic.claude-3-5-haiku-20241022-v1:0", 8192),  # Bedrock
    ("claude-3-5-sonnet-v2@20241022", 8192),  # Vertex
    ("claude-opus-4-1-20250805", 32000),
    ("claude-sonnet-4-20250514", 64000),
    ("gpt-4o-2024-05-13", 4096),  # (a snapshot's own entry before its family's)
    ("gpt-4o-2024-08-06", 16384),
    ("gpt-5-chat-latest", 16384),
    ("openai/o3-mini-2025-01-31", 100000),
    ("gemini-2.5-flash-preview-05-20", 65536),
    ("big-model", None),
    ("claude-sonnet-4-7", None),  # (an unknown minor version is not its major's: it may write more)
])
def test_known_ids_in_every_providers_spelling(model: str, ceiling: int | None):
    assert known_output_ceiling(model) == ceiling


def _config(openai_up, anthropic_up, model: str = "claude-3-5-haiku-20241022", **frontier) -> dict:  # noqa: F811
    cfg = frontier_config(openai_up, anthropic_up)  # $1 a day; $3 / $15 per million
    cfg["models"]["frontier"].update(model=model, **frontier)
    return cfg


def test_a_known_models_ceiling_bounds_the_reservation(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(_config(openai_up, anthropic_up))
    second_answered_beside_held(g, anthropic_up, sent_max_tokens=8192)  # (sent at the model's published ceiling)


def test_the_config_overrides_the_table(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(_config(openai_up, anthropic_up, max_output_tokens=100_000))
    with held_request(g, anthropic_up), pytest.raises(anthropic.RateLimitError):
        ant(g).messages.create(model="main", max_tokens=10, messages=MSG)
    assert anthropic_up.requests[0].body["max_tokens"] == 100_000


def test_a_request_naming_no_cap_is_reserved_and_sent_at_most_the_ceiling(gateway, openai_up, anthropic_up):  # noqa: F811
    """No max_tokens: `budgets.default_max_output_tokens` (here 20,000), but never past the model's ceiling (4,096)."""
    cfg = _config(openai_up, anthropic_up, model="claude-3-haiku-20240307")
    cfg["budgets"]["default_max_output_tokens"] = 20_000
    g = gateway(cfg)
    anthropic_up.default = Reply(text="hi", usage=(10, 5))
    assert oai(g).chat.completions.create(model="main", messages=MSG).choices[0].message.content == "hi"
    assert anthropic_up.requests[-1].body["max_tokens"] == 4096


def test_a_local_server_keeps_its_own_ceiling(gateway, openai_up, anthropic_up):  # noqa: F811
    """The table describes hosted APIs: a local server serving under a known id is not lowered."""
    cfg = _config(openai_up, anthropic_up)
    cfg["models"]["local"]["model"] = "claude-3-5-haiku"
    cfg["models"]["local"].pop("context_window")
    cfg["routes"]["loc"] = {"policy": "fallback", "targets": ["local"], "retries": 0}
    g = gateway(cfg)
    openai_up.default = Reply(text="hi", usage=(10, 5))
    oai(g).chat.completions.create(model="loc", max_tokens=30_000, messages=MSG)
    sent = openai_up.requests[-1].body
    assert sent.get("max_tokens", sent.get("max_completion_tokens")) == 30_000
