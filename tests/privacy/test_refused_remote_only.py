"""A privacy refusal on a route whose only target is remote (the `architect: frontier` shorthand), or on a remote
model named directly, is final and said in the client's schema as a 400 that names what was found (entity kinds,
never values) -- as the same refusal on a fallback route with a local target too small for the request is.

It was a 403 `permission_error` (the OpenAI body even said `invalid_request_error` under it). Claude Code shows a
403 as "Failed to authenticate. API Error: 403 privacy: ..." (session 36, newuser36: seen with the real CLI and
`--model architect`), and the message named the class only: an Aider user whose file held an e-mail address and a
phone number read "data of class 'pii' is local_only" without learning what in the chat was pii.
Real HTTP, official SDKs, doubles upstream."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from tests.gateway.conftest import ant, oai
from tests.privacy.support import privacy_config

ROUTES = {"architect": "frontier",
          "main": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}}
EMAIL = "maria.lindqvist@example.se"
TEXT = f"Write to {EMAIL} about the release."


@pytest.fixture
def g(gateway, openai_up, anthropic_up):
    return gateway(privacy_config(openai_up.url, anthropic_up.url, ROUTES, policy={"pii": "local_only"}))


@pytest.mark.parametrize("model", ["architect", "frontier"])
def test_anthropic_client_hears_a_final_400_naming_what_was_found(g, anthropic_up, model):
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).messages.create(model=model, max_tokens=50, messages=[{"role": "user", "content": TEXT}])
    body = e.value.body
    assert body["error"]["type"] == "invalid_request_error", body
    msg = body["error"]["message"]
    assert "'pii'" in msg and "local_only" in msg and "EMAIL_ADDRESS" in msg, msg
    assert EMAIL not in msg and "maria" not in msg.lower()
    assert not anthropic_up.requests


@pytest.mark.parametrize("model", ["architect", "frontier"])
def test_openai_client_hears_a_final_400(g, anthropic_up, model):
    with pytest.raises(openai.BadRequestError) as e:
        oai(g).chat.completions.create(model=model, messages=[{"role": "user", "content": TEXT}])
    assert e.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert "EMAIL_ADDRESS" in e.value.message and EMAIL not in e.value.message
    assert not anthropic_up.requests


def test_a_streamed_request_is_refused_before_its_stream_with_a_400(g, anthropic_up):
    r = httpx.post(g.url + "/v1/messages", json={"model": "architect", "max_tokens": 20, "stream": True,
                                                 "messages": [{"role": "user", "content": TEXT}]},
                   headers={"x-api-key": "k", "anthropic-version": "2023-06-01"}, timeout=30)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert not anthropic_up.requests

