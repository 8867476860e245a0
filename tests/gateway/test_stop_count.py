"""`stop` of an OpenAI Chat Completions request: at most 4 strings, OpenAI's own limit ("you can pass up to four stop
sequences", help.openai.com 5072263; `maxItems: 4` in its OpenAPI document). Before (review32c) any number was
forwarded, bounded only by the body's size: 100,000 stop strings were served, and a local server checks each one
against the text it generates, token by token. Past the limit: 400 in OpenAI's schema naming the field, before any
upstream call. Real HTTP, the official SDK."""

from __future__ import annotations

import openai
import pytest

from tests.gateway.conftest import oai


def test_more_than_four_stop_strings_are_refused_in_openais_schema(two_tier, openai_up):
    g = two_tier()
    msgs = [{"role": "user", "content": "hi"}]
    before = len(openai_up.requests)
    for stop in (["a", "b", "c", "d", "e"], [f"s{i}" for i in range(100_000)]):
        with pytest.raises(openai.BadRequestError) as e:
            oai(g).chat.completions.create(model="local", messages=msgs, stop=stop)
        assert e.value.status_code == 400 and "stop" in e.value.message and "4" in e.value.message, e.value.message
    assert len(openai_up.requests) == before  # no upstream call
    ok = oai(g).chat.completions.create(model="local", messages=msgs, stop=["a", "b", "c", "d"])
    assert ok.choices[0].message.content
    assert openai_up.requests[-1].body["stop"] == ["a", "b", "c", "d"]
