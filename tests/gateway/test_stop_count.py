"""`stop` of an OpenAI Chat Completions request: at most 32 strings (OpenAI's own API takes 4 and refuses more itself;
local servers take any number and clients written for them send more than 4, so the gateway forwards up to 32). Before (review32c) any number was
forwarded, bounded only by the body's size: 100,000 stop strings were served, and a local server checks each one
against the text it generates, token by token. Past the limit: 400 in OpenAI's schema naming the field, before any
upstream call. Real HTTP, the official SDK."""

from __future__ import annotations

import openai
import pytest

from tests.gateway.conftest import oai


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
