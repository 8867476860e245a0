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


# ---------------------------------------------------------------- review26c: embeddings admitted before any work

def test_a_chunked_embeddings_body_counts_its_tokens(gateway, keys, openai_up):
    """The tokens an embeddings call counts came from the Content-Length header (a third of it): a body sent
    chunked has none, so every call counted 16 tokens whatever its size, and a key held to 2,000 tokens a
    minute embedded as much as it liked."""
    cfg = _config("openai", openai_up.url, rpm=None)
    cfg["rate_limits"] = {"limits": [{"name": "key-tokens", "per": "key", "tokens_per_minute": 2000}]}
    g = gateway(cfg)
    body = b'{"model": "main", "input": "' + b"lorem ipsum dolor sit amet " * 1000 + b'"}'

    def chunked():  # a generator body: httpx sends it with Transfer-Encoding: chunked, no Content-Length
        yield body

    with httpx.Client(base_url=g.url, headers={"authorization": f"Bearer {KEYS['TW_SIDE_B']}"}) as c:
        # (one call larger than the whole limit runs when nothing else is counted: the second is the test)
        assert c.post("/v1/embeddings", content=chunked(), headers={"content-type": "application/json"}).is_success
        r = c.post("/v1/embeddings", content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded", r.text
    assert "key-tokens" in r.json()["error"]["message"]


def test_an_embeddings_call_over_the_limit_is_refused_before_its_privacy_screening(gateway, keys, openai_up,
                                                                                   monkeypatch):
    """A key over its rate limit had every embeddings body screened (the detectors, an LLM detector's call
    where configured) before the 429: the limit bounded nothing of that work. The limit comes first now: the
    refusal is the 429, not the privacy screening's own answer."""
    from tests.privacy.support import privacy_config

    monkeypatch.setenv("TW_SIDE_A", KEYS["TW_SIDE_A"])
    cfg = privacy_config(openai_up.url, openai_up.url, {"main": {"policy": "fallback", "targets": ["frontier"]}},
                         policy={"pii": "block", "secrets": "block"})
    cfg["providers"]["cloud"].update(kind="openai", base_url=openai_up.url + "/v1")
    cfg["server"] = {**cfg.get("server", {}), "default_route": "main", "api_keys_env": ["TW_SIDE_A"]}
    cfg["rate_limits"] = {"limits": [{"name": "each-key", "per": "key", "requests_per_minute": 1}]}
    g = gateway(cfg)
    c = oai(g, api_key=KEYS["TW_SIDE_A"])
    assert c.embeddings.create(model="main", input="nothing personal").data
    with pytest.raises(openai.RateLimitError) as e:
        c.embeddings.create(model="main", input="write to jane.doe@example.com")
    assert "each-key" in e.value.message
