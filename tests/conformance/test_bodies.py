"""Recorded whole (non-streamed) upstream bodies through every client/upstream pairing."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from tests.conformance.transcripts import FINISH, WHOLE, Transcript
from tests.doubles import Raw


@pytest.fixture(params=WHOLE, ids=lambda t: t.name)
def served(request: pytest.FixtureRequest, gateway, openai_up, anthropic_up):  # noqa: ANN001, ANN201
    t: Transcript = request.param
    up = openai_up if t.upstream == "openai" else anthropic_up
    up.default = Raw(body=t.body, content_type="application/json")
    base = up.url + "/v1" if t.upstream == "openai" else up.url
    g = gateway({"ledger": {"enabled": False}, "providers": {"up": {"kind": t.upstream, "base_url": base}},
                 "models": {"m": {"provider": "up", "model": "upstream-model"}}, "routes": {"main": ["m"]}})
    return g, t.expected


def test_anthropic_client_whole_body(served) -> None:  # noqa: ANN001
    g, exp = served
    r = g.keep(anthropic.Anthropic(base_url=g.url, api_key="test", max_retries=0)).messages.create(
        model="main", max_tokens=4000, messages=[{"role": "user", "content": "weather? 2+2?"}])
    content = list(r.content)
    if exp.thinking:
        t = content.pop(0)
        assert t.type == "thinking" and t.thinking == exp.thinking and t.signature == (exp.signature or "")
    t = content.pop(0)
    assert t.type == "text" and t.text == exp.text
    assert [(c.type, c.id, c.name, c.input) for c in content] == [("tool_use", *x) for x in exp.tools]
    assert r.stop_reason == exp.stop
    assert (r.usage.input_tokens, r.usage.output_tokens) == (exp.input_tokens, exp.output_tokens)
    assert (r.usage.cache_read_input_tokens or 0) == exp.cache_read


def test_openai_client_whole_body(served) -> None:  # noqa: ANN001
    g, exp = served
    r = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0)).chat.completions.create(
        model="main", messages=[{"role": "user", "content": "weather? 2+2?"}])
    msg = r.choices[0].message
    assert msg.content == exp.text
    assert getattr(msg, "reasoning_content", None) == (exp.thinking or None)
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in msg.tool_calls or []] == exp.tools
    assert r.choices[0].finish_reason == FINISH[exp.stop]
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (exp.input_tokens + exp.cache_read, exp.output_tokens)
