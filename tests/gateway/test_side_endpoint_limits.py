"""The side endpoints under the key's rate limits, and OpenAI's Responses input-token count.

`POST /v1/messages/count_tokens` and `POST /v1/embeddings` passed no rate limit (docs/budgets.md said so):
a key held to two requests a minute sent as many as it liked, each parsed, estimated or sent upstream. Now
each counts as one request in the limits of its key and route. `POST /v1/responses/input_tokens`
(`client.responses.input_tokens.count`) got the 404 meant for stored responses ("cannot be retrieved,
deleted, ..."); now it is answered as OpenAI does, with tierwise's estimate."""

from __future__ import annotations

import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.gateway.conftest import ant, oai

KEYS = {"TW_SIDE_A": "sk-gw-side-aaaaaaaaaaaaaaaaaaaa", "TW_SIDE_B": "sk-gw-side-bbbbbbbbbbbbbbbbbbbb"}


@pytest.fixture
def keys(monkeypatch):
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)


def _config(kind: str, url: str, rpm: int | None = 2) -> dict:
    cfg = {
        "server": {"default_route": "main", "api_keys_env": ["TW_SIDE_A", "TW_SIDE_B"]},
        "ledger": {"enabled": False},
        "providers": {"up": {"kind": kind, "base_url": url + "/v1" if kind == "openai" else url,
                             "locality": "remote"}},
        "models": {"m": {"provider": "up", "model": "big-model"}},
        "routes": {"main": {"policy": "fallback", "targets": ["m"], "retries": 0}},
    }
    if rpm is not None:
        cfg["rate_limits"] = {"limits": [{"name": "each-key", "per": "key", "requests_per_minute": rpm}]}
    return cfg


def test_count_tokens_counts_in_the_keys_rate_limit(gateway, keys, anthropic_up):
    g = gateway(_config("anthropic", anthropic_up.url))
    b = ant(g, api_key=KEYS["TW_SIDE_B"])
    msgs = [{"role": "user", "content": "how many tokens is this?"}]
    for _ in range(2):
        assert b.messages.count_tokens(model="main", messages=msgs).input_tokens > 0
    with pytest.raises(anthropic.RateLimitError) as e:  # in Anthropic's schema, with when to come back
        b.messages.count_tokens(model="main", messages=msgs)
    assert "each-key" in e.value.message and int(e.value.response.headers["retry-after"]) >= 1
    # The limit is per key: the other key's count and chat still pass.
    a = ant(g, api_key=KEYS["TW_SIDE_A"])
    assert a.messages.count_tokens(model="main", messages=msgs).input_tokens > 0
    assert a.messages.create(model="main", max_tokens=5, messages=msgs).content


def test_embeddings_count_in_the_keys_rate_limit(gateway, keys, openai_up):
    g = gateway(_config("openai", openai_up.url))
    b = oai(g, api_key=KEYS["TW_SIDE_B"])
    for _ in range(2):
        assert b.embeddings.create(model="main", input="x").data
    with pytest.raises(openai.RateLimitError) as e:
        b.embeddings.create(model="main", input="x")
    assert "each-key" in e.value.message and e.value.response.headers.get("retry-after")
    assert oai(g, api_key=KEYS["TW_SIDE_A"]).embeddings.create(model="main", input="x").data


def test_responses_input_tokens_are_counted(gateway, keys, openai_up):
    g = gateway(_config("openai", openai_up.url, rpm=None))
    c = oai(g, api_key=KEYS["TW_SIDE_A"])
    short = c.responses.input_tokens.count(model="main", input="hi")
    long = c.responses.input_tokens.count(model="main", input="a longer question " * 50,
                                          instructions="Answer in one word.")
    assert short.object == "response.input_tokens" and 0 < short.input_tokens < long.input_tokens
    # Every field is optional for this endpoint: no model counts for the default route.
    assert c.responses.input_tokens.count(input="hi").input_tokens == short.input_tokens
    # Errors in OpenAI's schema, naming what is wrong (not the stored-responses 404).
    with pytest.raises(openai.BadRequestError) as e:
        c.responses.input_tokens.count(model="main", input="hi", previous_response_id="resp_nope")
    assert "resp_nope" in e.value.message
    with pytest.raises(openai.BadRequestError):
        c.responses.input_tokens.count(model="main", input=[{"type": "nonsense"}])
    r = httpx.get(g.url + "/v1/responses/input_tokens", headers={"authorization": "Bearer " + KEYS["TW_SIDE_A"]})
    assert r.status_code == 405 and r.json()["error"]["message"]


def test_responses_input_tokens_count_in_the_keys_rate_limit(gateway, keys, openai_up):
    g = gateway(_config("openai", openai_up.url))
    b = oai(g, api_key=KEYS["TW_SIDE_B"])
    for _ in range(2):
        b.responses.input_tokens.count(model="main", input="hi")
    with pytest.raises(openai.RateLimitError):
        b.responses.input_tokens.count(model="main", input="hi")
