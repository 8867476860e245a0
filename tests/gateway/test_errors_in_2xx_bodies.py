"""An upstream answer sent with 200 whose body carries an `error` (beside the answer or instead of it) is an
upstream error: in the client's schema, scrubbed, and a reason for a fallback route to try its next target.

Real servers that do this: OpenRouter answers 200 once a provider behind it has taken the request, and a
failure after that comes as `{"error": {"code": 429, "message": "Provider returned error", "metadata": ...}}`
or as a choice with `finish_reason: "error"` and an `error` object beside the half answer; proxies of the
one-api family answer every error with 200 (OpenAI `{"error": ...}`, Anthropic `{"type": "error", ...}`).
Before, the half answer (or an empty one) went to the client as a success. Real HTTP, official SDKs."""

from __future__ import annotations

import anthropic
import openai
import orjson
import pytest

from tests.doubles import Raw
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config

SECRET = "sk-local-secret-body-error-1234567890abcdef"
HALF = {"role": "assistant", "content": "half an answer"}
OPENAI_BODIES = {  # shape: (200 body from an OpenAI-format upstream, the status the client gets)
    "an error instead of choices (OpenRouter, code 429)": (
        {"error": {"code": 429, "message": f"Provider returned error {SECRET}",
                   "metadata": {"raw": "rate-limited upstream", "provider_name": "X"}}}, 429),
    "an error beside the choices": (
        {"id": "c1", "object": "chat.completion", "model": "m",
         "choices": [{"index": 0, "message": HALF, "finish_reason": "stop"}],
         "error": {"message": f"generation failed {SECRET}", "type": "server_error"}}, 502),
    "a choice that ended with finish_reason error": (
        {"id": "c1", "object": "chat.completion", "model": "m",
         "choices": [{"index": 0, "message": HALF, "finish_reason": "error",
                      "error": {"code": 502, "message": f"provider disconnected {SECRET}"}}],
         "usage": {"prompt_tokens": None, "completion_tokens": None, "total_tokens": 0}}, 502),
    "an error string (Ollama's native shape)": ({"error": f"model failed to load {SECRET}"}, 502),
    "OpenAI's rate-limit error object": ({"error": {"message": f"Rate limit reached {SECRET}", "type": "requests",
                                                    "param": None, "code": "rate_limit_exceeded"}}, 429),
}


def _local_only(gateway, openai_up, anthropic_up, monkeypatch, targets: list[str]):
    monkeypatch.setenv("LOCAL_KEY", SECRET)
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": targets, "retries": 0}})
    cfg["providers"]["localsrv"]["api_key_env"] = "LOCAL_KEY"
    return gateway(cfg)


def _call(g, api: str) -> str:
    """The answer's text; raises the SDK's error."""
    if api == "openai":
        return oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}]
                                              ).choices[0].message.content or ""
    if api == "responses":
        return oai(g).responses.create(model="main", input="hi").output_text
    msg = ant(g).messages.create(model="main", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    return "".join(b.text for b in msg.content if b.type == "text")


@pytest.mark.parametrize("api", ["openai", "anthropic", "responses"])
@pytest.mark.parametrize("shape", sorted(OPENAI_BODIES))
def test_an_openai_upstreams_200_with_an_error_is_an_upstream_error(gateway, openai_up, anthropic_up, monkeypatch,
                                                                     api, shape):
    body, status = OPENAI_BODIES[shape]
    g = _local_only(gateway, openai_up, anthropic_up, monkeypatch, ["local"])
    openai_up.script(Raw(body=orjson.dumps(body)))
    error = openai.APIStatusError if api in ("openai", "responses") else anthropic.APIStatusError
    with pytest.raises(error) as e:
        _call(g, api)
    assert e.value.status_code == status, (e.value.status_code, e.value.response.text)
    text = e.value.response.text
    assert SECRET not in text and "half an answer" not in text, text
    g.flush()
    row = g.ledger.query()[-1]
    assert row.error_message and SECRET not in row.error_message


@pytest.mark.parametrize("shape", sorted(OPENAI_BODIES))
def test_a_200_with_an_error_moves_a_fallback_on(gateway, openai_up, anthropic_up, monkeypatch, shape):
    """The failed target counts as failed: the route's next target answers (the Anthropic double's "ok")."""
    g = _local_only(gateway, openai_up, anthropic_up, monkeypatch, ["local", "frontier"])
    openai_up.script(Raw(body=orjson.dumps(OPENAI_BODIES[shape][0])))
    assert _call(g, "openai") == "ok"
    assert len(openai_up.requests) == 1 and len(anthropic_up.requests) == 1


def test_an_error_member_that_is_null_is_no_error(two_tier, openai_up):
    """Servers that always write `"error": null` beside their answer keep working."""
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    openai_up.script(Raw(body=orjson.dumps({"id": "c1", "object": "chat.completion", "model": "m", "error": None,
                                            "choices": [{"index": 0, "message": HALF, "finish_reason": "stop"}]})))
    assert _call(g, "openai") == "half an answer"


ANTHROPIC_BODIES = {  # a 200 from an Anthropic-format upstream
    "an error beside the message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
        "content": [{"type": "text", "text": "half an answer"}], "usage": {"input_tokens": 1, "output_tokens": 1},
        "error": {"type": "overloaded_error", "message": f"Overloaded {SECRET}"}},
    "a type error body (one-api proxies)": {"type": "error",
                                            "error": {"type": "overloaded_error", "message": f"Overloaded {SECRET}"}},
}


@pytest.mark.parametrize("shape", sorted(ANTHROPIC_BODIES))
def test_an_anthropic_upstreams_200_with_an_error_is_an_upstream_error(gateway, openai_up, anthropic_up, monkeypatch,
                                                                        shape):
    """The native path (Anthropic client, Anthropic upstream) relays bytes untouched when it can: not these."""
    monkeypatch.setenv("CLOUD_KEY", SECRET)
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["providers"]["cloud"]["api_key_env"] = "CLOUD_KEY"
    g = gateway(cfg)
    anthropic_up.script(Raw(body=orjson.dumps(ANTHROPIC_BODIES[shape])))
    with pytest.raises(anthropic.APIStatusError) as e:
        _call(g, "anthropic")
    assert e.value.status_code == 503, e.value.response.text
    assert e.value.body["error"]["type"] == "overloaded_error"
    assert SECRET not in e.value.response.text and "half an answer" not in e.value.response.text
