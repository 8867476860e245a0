"""A provider whose `kind` is the other API's (session 26's leftovers): the first failing request says so, in the
error the client gets and in the console line, instead of a bare "answered HTTP 404"."""

from __future__ import annotations

import openai
import pytest

from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401
from tests.harness import two_tier_config


@pytest.mark.parametrize("target,kind,other", [("local", "openai", "anthropic"), ("frontier", "anthropic", "openai")])
def test_the_first_failing_request_names_the_other_api(gateway, openai_up, anthropic_up, target, kind,  # noqa: F811
                                                       other, caplog):
    # swapped: the `openai` provider on the Anthropic double, the `anthropic` provider on the OpenAI double
    cfg = two_tier_config(anthropic_up.url, openai_up.url, routes={"main": {"policy": "fallback",
                                                                             "targets": [target], "retries": 0}})
    g = gateway(cfg)
    client = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="t", max_retries=0))
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 502
    said = f"answers in the {'Anthropic Messages' if other == 'anthropic' else 'OpenAI Chat Completions'} API's " \
           f"shape but the provider has kind: {kind}: set kind: {other}"
    assert said in e.value.message, e.value.message


def test_the_right_kind_is_not_told_to_change():
    from tierwise.providers.api_shape import other_api

    anthropic_error = {"type": "error", "error": {"type": "not_found_error", "message": "Not Found"}}
    openai_error = {"error": {"message": "Invalid URL", "type": "invalid_request_error", "param": None, "code": None}}
    assert other_api("anthropic", anthropic_error) is None and other_api("openai", openai_error) is None
    assert other_api("openai", {"error": "model not found"}) is None  # Ollama's own shape
    assert other_api("openai", {"object": "error", "message": "x"}) is None  # vLLM's older one
    assert other_api("openai", anthropic_error) == "anthropic" and other_api("anthropic", openai_error) == "openai"


@pytest.mark.parametrize("status", [400, 429, 500])
def test_a_server_that_speaks_both_apis_is_not_told_to_change_kind(gateway, anthropic_up, status):  # noqa: F811
    """llama.cpp (and vLLM, Ollama) serve the Anthropic Messages API too and answer its errors in OpenAI's shape:
    its context overflow, rate limit or crash is not a wrong `kind` (review26b: the error said "set kind: openai",
    advice that breaks a working setup). Only statuses a wrong kind gives (401/403/404/405) carry the hint."""
    import json

    from tests.doubles import Raw

    g = gateway({"ledger": {"path": "ledger.db"},
                 "providers": {"llama": {"kind": "anthropic", "base_url": anthropic_up.url, "locality": "local"}},
                 "models": {"m": {"provider": "llama", "model": "qwen"}},
                 "routes": {"main": {"policy": "fallback", "targets": ["m"], "retries": 0}}})
    body = {"error": {"code": status, "message": "slot unavailable", "type": "server_error"}}
    anthropic_up.script(Raw(status, json.dumps(body)))
    client = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="t", max_retries=0))
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
    assert "slot unavailable" in e.value.message and "set kind" not in e.value.message, e.value.message
