"""A client given the wrong base URL gets a 404 in the schema of the API it spoke, saying how to fix the URL.

Found with mini-swe-agent 2.4.6 (litellm 1.110.2) pointed at the gateway with `api_base: http://HOST:PORT/v1`
for an `anthropic/...` model: litellm, like the Anthropic SDK, adds `/v1/messages` itself, so it sent
`POST /v1/v1/messages`. The gateway answered in OpenAI's error schema ("no such endpoint"), although the
client spoke Anthropic's API and nothing said that the URL had one /v1 too many.
"""

from __future__ import annotations

import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.doubles import Reply
from tests.harness import two_tier_config


@pytest.fixture
def g(gateway, openai_up, anthropic_up):
    anthropic_up.default = Reply(text="ok")
    return gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]}))


# The request litellm sent (headers as captured; the body cut to what matters here).
LITELLM_HEADERS = {"User-Agent": "litellm/1.110.2", "anthropic-version": "2023-06-01", "Accept": "application/json",
                   "Content-Type": "application/json", "x-api-key": "unused-key"}
LITELLM_BODY = {"model": "main", "max_tokens": 128000, "system": "You are a helpful assistant that can interact with a "
                "computer.", "messages": [{"role": "user", "content": [{"type": "text", "text": "Please solve this "
                "issue: Read the file notes.txt and tell me the hidden word"}]}],
                "tools": [{"name": "bash", "description": "Execute a bash command",
                           "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                                            "required": ["command"]}}]}


def test_litellm_anthropic_request_on_a_doubled_v1_gets_an_anthropic_404_that_names_the_fix(g):
    r = httpx.post(g.url + "/v1/v1/messages", headers=LITELLM_HEADERS, json=LITELLM_BODY, timeout=10)
    assert r.status_code == 404
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert "base URL that already ends in /v1" in body["error"]["message"]
    assert "/v1/messages" in body["error"]["message"]


def test_anthropic_sdk_with_base_url_ending_in_v1(g):
    client = g.keep(anthropic.Anthropic(base_url=g.url + "/v1", api_key="k", max_retries=0))
    with pytest.raises(anthropic.NotFoundError) as err:
        client.messages.create(model="main", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["type"] == "error"  # the SDK's own schema: its error type and message are filled in
    assert "without /v1" in err.value.body["error"]["message"]
    with pytest.raises(anthropic.NotFoundError) as err:
        client.messages.count_tokens(model="main", messages=[{"role": "user", "content": "hi"}])
    assert "without /v1" in err.value.body["error"]["message"]
    with pytest.raises(anthropic.NotFoundError) as err:  # GET /v1/v1/models: Anthropic's schema too
        client.models.list()
    assert err.value.body["type"] == "error" and "without /v1" in err.value.body["error"]["message"]
    # the same client with the right base URL works
    ok = g.keep(anthropic.Anthropic(base_url=g.url, api_key="k", max_retries=0))
    assert ok.messages.create(model="main", max_tokens=5, messages=[{"role": "user", "content": "hi"}]).content


def test_openai_sdk_with_a_doubled_v1_keeps_openai_schema_and_gets_the_hint(g):
    client = g.keep(openai.OpenAI(base_url=g.url + "/v1/v1", api_key="k", max_retries=0))
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
    assert "without /v1" in err.value.body["message"]


def test_anthropic_client_on_a_path_of_no_api_gets_anthropic_schema(g):
    # Anthropic's legacy Text Completions endpoint: not served; the client's SDK reads Anthropic's error schema
    r = httpx.post(g.url + "/v1/complete", headers={"anthropic-version": "2023-06-01"}, json={}, timeout=10)
    assert r.status_code == 404 and r.json()["type"] == "error"
    # no hint where the path without the extra /v1 is not served either; without the header, OpenAI's schema
    r = httpx.post(g.url + "/v1/v1/nothing", json={}, timeout=10)
    assert r.status_code == 404 and "ends in /v1" not in r.json()["error"]["message"]
