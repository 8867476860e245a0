"""Each API's own error vocabulary and statuses, and `Retry-After` on a 503 while breakers are open.

OpenAI-format clients must never see Anthropic type names (`overloaded_error`,
`authentication_error`, `not_found_error`) or Anthropic-only statuses (529); Anthropic clients
keep Anthropic's names. Clients are the official SDKs (no retries, so each error is seen as sent).
"""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.doubles import Fail
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config

ANTHROPIC_ONLY = ("overloaded_error", "authentication_error", "not_found_error", "permission_error",
                  "request_too_large", "api_error")
Q = [{"role": "user", "content": "q"}]


def assert_openai_words(body: object) -> None:
    text = str(body)
    for name in ANTHROPIC_ONLY:
        assert name not in text, (name, body)


@pytest.fixture
def all_open(gateway, openai_up, anthropic_up):
    """Both targets fail once with the breaker set to open on one failure, for a long cooldown."""
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0}})
    cfg["breaker"] = {"failures": 1, "cooldown": 120}
    openai_up.default = Fail(500)
    anthropic_up.default = Fail(500)
    g = gateway(cfg)
    with pytest.raises(openai.InternalServerError):
        oai(g).chat.completions.create(model="main", messages=Q)
    assert len(openai_up.requests) == 1 and len(anthropic_up.requests) == 1
    return g


def test_openai_client_gets_503_server_error_with_retry_after(all_open, openai_up, anthropic_up):
    with pytest.raises(openai.InternalServerError) as e:
        oai(all_open).chat.completions.create(model="main", messages=Q)
    assert e.value.status_code == 503
    assert e.value.type == "server_error"
    assert_openai_words(e.value.body)
    ra = int(e.value.response.headers["retry-after"])
    assert 1 <= ra <= 120  # seconds until a breaker lets a probe through
    assert len(openai_up.requests) == 1 and len(anthropic_up.requests) == 1  # breakers open: nothing called


def test_openai_stream_gets_retry_after_too(all_open):
    with pytest.raises(openai.InternalServerError) as e:
        oai(all_open).chat.completions.create(model="main", messages=Q, stream=True)
    assert e.value.status_code == 503 and "retry-after" in e.value.response.headers
    assert_openai_words(e.value.body)


def test_anthropic_client_gets_overloaded_error_with_retry_after(all_open):
    with pytest.raises(anthropic.APIStatusError) as e:
        ant(all_open).messages.create(model="main", max_tokens=5, messages=Q)
    assert e.value.status_code == 503 and e.value.body["error"]["type"] == "overloaded_error"
    assert 1 <= int(e.value.response.headers["retry-after"]) <= 120


def test_a_529_from_anthropic_reaches_openai_clients_as_503_server_error(gateway, openai_up, anthropic_up):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]}))
    anthropic_up.default = Fail(529, "Overloaded")
    with pytest.raises(openai.APIStatusError) as e:
        oai(g).chat.completions.create(model="main", messages=Q)
    assert e.value.status_code == 503  # OpenAI has no 529
    assert e.value.body["type"] == "server_error"
    assert_openai_words(e.value.body)
    with pytest.raises(anthropic.APIStatusError) as ae:
        ant(g).messages.create(model="main", max_tokens=5, messages=Q)
    assert ae.value.body["error"]["type"] == "overloaded_error"  # Anthropic clients keep Anthropic's word


def test_openai_words_for_the_gateways_own_errors(gateway, openai_up, anthropic_up, monkeypatch):
    monkeypatch.setenv("TW_CLIENT_KEY", "sk-client-right")
    cfg = two_tier_config(openai_up.url, anthropic_up.url)
    cfg["server"] = {"default_route": "main", "api_keys_env": ["TW_CLIENT_KEY"]}
    g = gateway(cfg)
    with pytest.raises(openai.AuthenticationError) as e:
        oai(g, api_key="sk-client-wrong").chat.completions.create(model="main", messages=Q)
    assert e.value.type == "invalid_request_error" and e.value.code == "invalid_api_key"
    assert_openai_words(e.value.body)
    with pytest.raises(anthropic.AuthenticationError) as ae:
        ant(g, api_key="sk-client-wrong").messages.create(model="main", max_tokens=5, messages=Q)
    assert ae.value.body["error"]["type"] == "authentication_error"


def test_upstream_rate_limit_in_openai_words(gateway, openai_up, anthropic_up):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]}))
    anthropic_up.default = Fail(429, "Number of requests has exceeded your rate limit", retry_after=7)
    with pytest.raises(openai.RateLimitError) as e:
        oai(g).chat.completions.create(model="main", messages=Q)
    assert e.value.code == "rate_limit_exceeded" and e.value.response.headers["retry-after"] == "7"
    assert "rate_limit_error" not in str(e.value.body)
