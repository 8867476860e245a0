"""`stop` of an OpenAI Chat Completions request: at most 32 strings (OpenAI's own API takes 4 and refuses more itself;
local servers take any number and clients written for them send more than 4, so the gateway forwards up to 32). Before (review32c) any number was
forwarded, bounded only by the body's size: 100,000 stop strings were served, and a local server checks each one
against the text it generates, token by token. Past the limit: 400 in OpenAI's schema naming the field, before any
upstream call. Real HTTP, the official SDK."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.gateway.conftest import ant, oai


def test_more_than_32_stop_strings_are_refused_in_openais_schema(two_tier, openai_up):
    g = two_tier()
    msgs = [{"role": "user", "content": "hi"}]
    before = len(openai_up.requests)
    for stop in ([f"s{i}" for i in range(33)], [f"s{i}" for i in range(100_000)]):
        with pytest.raises(openai.BadRequestError) as e:
            oai(g).chat.completions.create(model="local", messages=msgs, stop=stop)
        assert e.value.status_code == 400 and "stop" in e.value.message and "32" in e.value.message, e.value.message
    assert len(openai_up.requests) == before  # no upstream call
    ok = oai(g).chat.completions.create(model="local", messages=msgs, stop=[f"s{i}" for i in range(32)])
    assert ok.choices[0].message.content
    assert openai_up.requests[-1].body["stop"] == [f"s{i}" for i in range(32)]


def test_more_than_32_anthropic_stop_sequences_are_refused_in_anthropics_schema(two_tier, openai_up, anthropic_up):
    """wire10: Anthropic's `stop_sequences` were forwarded in any number (no published limit; 100,000 served). The
    bound is OpenAI `stop`'s, on every path (pass-through to the Anthropic upstream and translated to OpenAI)."""
    g = two_tier()
    msgs = [{"role": "user", "content": "hi"}]
    before = (len(openai_up.requests), len(anthropic_up.requests))
    for model in ("frontier", "local"):
        for stop in ([f"s{i}" for i in range(33)], [f"s{i}" for i in range(100_000)]):
            with pytest.raises(anthropic.BadRequestError) as e:
                ant(g).messages.create(model=model, max_tokens=5, messages=msgs, stop_sequences=stop)
            assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "invalid_request_error"
            said = e.value.body["error"]["message"]
            assert "stop_sequences" in said and "32" in said, said
    assert (len(openai_up.requests), len(anthropic_up.requests)) == before  # no upstream call
    ok = ant(g).messages.create(model="frontier", max_tokens=5, messages=msgs, stop_sequences=[f"s{i}" for i in range(32)])
    assert ok.content
    assert anthropic_up.requests[-1].body["stop_sequences"] == [f"s{i}" for i in range(32)]


def test_logit_bias_past_1024_entries_is_refused_in_the_clients_schema(two_tier, openai_up, anthropic_up):
    """wire10: `logit_bias` (an OpenAI field, forwarded by default; an Anthropic body's where the operator allows it)
    was forwarded with any number of entries: 100,000 served, each a bias a local server applies at every token."""
    g = two_tier(server={"default_route": "main", "forwarding": {"anthropic_fields": ["logit_bias"]}})
    msgs = [{"role": "user", "content": "hi"}]
    before = (len(openai_up.requests), len(anthropic_up.requests))
    many = {str(i): -100 for i in range(1025)}
    with pytest.raises(openai.BadRequestError) as e:
        oai(g).chat.completions.create(model="local", messages=msgs, logit_bias=many)
    assert "logit_bias" in e.value.message and "1024" in e.value.message, e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        oai(g).chat.completions.create(model="local", messages=msgs, logit_bias={str(i): 1 for i in range(100_000)})
    with pytest.raises(anthropic.BadRequestError) as ea:
        ant(g).messages.create(model="frontier", max_tokens=5, messages=msgs, extra_body={"logit_bias": many})
    assert ea.value.body["type"] == "error" and "logit_bias" in ea.value.body["error"]["message"]
    assert (len(openai_up.requests), len(anthropic_up.requests)) == before  # no upstream call
    fine = {str(i): -100 for i in range(1024)}
    assert oai(g).chat.completions.create(model="local", messages=msgs, logit_bias=fine).choices[0].message.content
    assert openai_up.requests[-1].body["logit_bias"] == fine
