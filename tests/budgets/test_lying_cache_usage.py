"""An OpenAI-compatible upstream's usage that says the same prompt tokens were both read from the cache (DeepSeek's
`prompt_cache_hit_tokens`) and written to it (OpenRouter's `prompt_tokens_details.cache_write_tokens`, read since
costs3): before review31c the input left over was negative (100,000 prompt tokens: input -100,000), a count the ledger
kept, the client was answered and the budget priced (a negative input cost given back against the writes)."""

from __future__ import annotations

import orjson

from tests.doubles import Raw
from tests.gateway.conftest import ant, gateway, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import two_tier_config

PROMPT = 100_000
LIE = {"prompt_tokens": PROMPT, "completion_tokens": 10, "prompt_cache_hit_tokens": PROMPT,
       "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": PROMPT}}


def test_reads_and_writes_never_exceed_the_prompt():
    from tierwise.wire.openai_chat.response import usage_in

    u = usage_in(LIE)
    assert u.input_tokens >= 0 and u.input_tokens + u.cache_read_tokens + u.cache_write_tokens == PROMPT, u


def test_an_anthropic_client_is_never_told_a_negative_input(gateway, openai_up):  # noqa: F811
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "anthropic/claude-sonnet-4",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": LIE}
    openai_up.default = Raw(200, orjson.dumps(body))
    cfg = two_tier_config(openai_up.url, openai_up.url, remote_kind="openai",
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["models"]["frontier"].update(model="anthropic/claude-sonnet-4", price={"input": 3, "output": 15})
    g = gateway(cfg)
    r = ant(g).messages.create(model="main", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert r.usage.input_tokens >= 0, r.usage
