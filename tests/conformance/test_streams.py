"""Recorded upstream streams replayed through every client/upstream pairing.

Each transcript (tests/conformance/transcripts/) is served byte for byte by an upstream double of
its own format; the official `openai` and `anthropic` SDKs, and raw HTTP for the event-by-event
view, ask the gateway for it. Anthropic transcripts cover Anthropic→Anthropic and OpenAI→Anthropic,
OpenAI-format ones (OpenAI, vLLM, DeepSeek) cover OpenAI→OpenAI and Anthropic→OpenAI.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from tests.conformance.sse_client import AnthropicStream, OpenAIStream, post_stream
from tests.conformance.transcripts import FINISH, TRANSCRIPTS, Transcript
from tests.doubles import Raw

WEATHER_ANT = {"name": "get_weather", "description": "Weather for a city",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"},
                                                                 "days": {"type": "integer"},
                                                                 "units": {"type": "array"}},
                                "required": ["city"]}}
WEATHER_OAI = {"type": "function", "function": {"name": WEATHER_ANT["name"], "description": WEATHER_ANT["description"],
                                                "parameters": WEATHER_ANT["input_schema"]}}
QUESTION = "What is the weather in Paris and Oslo? And what is two plus two?"


@pytest.fixture(params=TRANSCRIPTS, ids=lambda t: t.name)
def transcript(request: pytest.FixtureRequest) -> Transcript:
    return request.param


@pytest.fixture
def served(transcript: Transcript, gateway, openai_up, anthropic_up):  # noqa: ANN001
    return serve(transcript, gateway, openai_up, anthropic_up)


def serve(transcript: Transcript, gateway, openai_up, anthropic_up):  # noqa: ANN001, ANN201
    """A gateway whose only model sits on an upstream replaying the transcript."""
    up = openai_up if transcript.upstream == "openai" else anthropic_up
    up.default = Raw(body=transcript.body, content_type="text/event-stream")
    base = up.url + "/v1" if transcript.upstream == "openai" else up.url
    g = gateway({"ledger": {"enabled": False},
                 "providers": {"up": {"kind": transcript.upstream, "base_url": base}},
                 "models": {"m": {"provider": "up", "model": "upstream-model"}},
                 "routes": {"main": ["m"]}})
    return g, up, transcript.expected


def anthropic_body() -> dict[str, Any]:
    return {"model": "main", "max_tokens": 4000, "stream": True, "tools": [WEATHER_ANT],
            "thinking": {"type": "enabled", "budget_tokens": 2000},
            "messages": [{"role": "user", "content": QUESTION}]}


def openai_body(include_usage: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "main", "stream": True, "tools": [WEATHER_OAI],
                            "messages": [{"role": "user", "content": QUESTION}]}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


# ---------------------------------------------------------------------------- Anthropic client


def test_anthropic_client_event_by_event(served) -> None:  # noqa: ANN001
    g, up, exp = served
    status, headers, raw = post_stream(g.url, "/v1/messages", anthropic_body(), "anthropic")
    assert status == 200 and headers["content-type"].startswith("text/event-stream"), raw[:500]
    s = AnthropicStream.read(raw)

    want_types = (["thinking"] if exp.thinking else []) + (["text"] if exp.text else []) + ["tool_use"] * len(exp.tools)
    assert [b.type for b in s.blocks] == want_types
    blocks = iter(s.blocks)
    if exp.thinking:
        b = next(blocks)
        assert b.thinking == exp.thinking
        if exp.signature:  # Anthropic's signature arrives unchanged, in its own delta
            assert b.signatures == [exp.signature]
        else:  # no one signed this thinking: the gateway must not invent a signature
            assert not any(b.signatures) and not b.start.get("signature")
    if exp.text:
        assert next(blocks).text == exp.text
    for tid, name, args in exp.tools:
        b = next(blocks)
        assert (b.start["id"], b.start["name"], b.start["input"]) == (tid, name, {})
        # Anthropic streams a call without input as one empty piece (its SDK reads that as {})
        assert json.loads("".join(b.json_pieces) or "{}") == args
        if exp.pieces:
            assert len(b.json_pieces) > 1  # streamed in pieces, not buffered into one
    assert s.message_delta["delta"]["stop_reason"] == exp.stop
    assert s.message_delta["usage"]["output_tokens"] == exp.output_tokens


def test_anthropic_sdk_accumulates_the_final_message(served) -> None:  # noqa: ANN001
    g, up, exp = served
    client = anthropic.Anthropic(base_url=g.url, api_key="test", max_retries=0)
    body = anthropic_body()
    del body["stream"]
    with client.messages.stream(**body) as stream:
        kinds = [ev.type for ev in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    content = list(final.content)
    if exp.thinking:
        t = content.pop(0)
        assert t.type == "thinking" and t.thinking == exp.thinking
        assert t.signature == (exp.signature or "")
    if exp.text:
        t = content.pop(0)
        assert t.type == "text" and t.text == exp.text
    assert [(c.type, c.id, c.name, c.input) for c in content] == [("tool_use", *t) for t in exp.tools]
    assert final.stop_reason == exp.stop
    assert final.usage.output_tokens == exp.output_tokens
    assert final.usage.input_tokens == exp.input_tokens
    assert (final.usage.cache_read_input_tokens or 0) == exp.cache_read


# ---------------------------------------------------------------------------- OpenAI client


@pytest.mark.parametrize("include_usage", [True, False], ids=["usage", "no-usage"])
def test_openai_client_event_by_event(served, transcript: Transcript, include_usage: bool) -> None:  # noqa: ANN001
    g, up, exp = served
    status, headers, raw = post_stream(g.url, "/v1/chat/completions", openai_body(include_usage), "openai")
    assert status == 200 and headers["content-type"].startswith("text/event-stream"), raw[:500]
    if exp.verbatim_to_openai_clients:
        want = transcript.body if include_usage else b"".join(
            e + b"\n\n" for e in transcript.body.split(b"\n\n") if e and b'"choices":[]' not in e)
        # byte for byte, but for the upstream's name: the client reads the model it asked for (wire/model_name.py)
        assert b'"model":"gemini-recorded"' in want
        assert raw == want.replace(b'"model":"gemini-recorded"', b'"model":"main"')
        return
    s = OpenAIStream.read(raw)
    assert s.reasoning == exp.thinking  # thinking travels as reasoning_content, the field OpenAI-style clients read
    assert s.content == exp.text
    assert [(c["id"], c["name"]) for c in s.tool_calls.values()] == [(t[0], t[1]) for t in exp.tools]
    for n, (_, _, args) in enumerate(exp.tools):
        assert json.loads("".join(s.arg_pieces[n])) == args  # as is: OpenAI clients parse it
        if exp.pieces:
            assert len(s.arg_pieces[n]) > 1  # streamed in pieces, not buffered into one
    assert s.finish == [FINISH[exp.stop]]
    if include_usage:
        assert s.usage, "usage was asked for"
        u = s.usage[-1]
        prompt = exp.input_tokens + exp.cache_read
        assert (u["prompt_tokens"], u["completion_tokens"], u["total_tokens"]) == \
            (prompt, exp.output_tokens, prompt + exp.output_tokens)
        # relayed untouched from DeepSeek, its cache hits keep DeepSeek's own field name
        cached = (u.get("prompt_tokens_details") or {}).get("cached_tokens") or u.get("prompt_cache_hit_tokens", 0)
        assert cached == exp.cache_read
    else:  # a client that did not ask must not get a chunk with no choices (many index choices[0])
        assert s.empty_choice_chunks == 0


# (not for a stream relayed verbatim off-spec: the SDK fails on it as it would talking to the server)
@pytest.mark.parametrize("t", [t for t in TRANSCRIPTS if not t.expected.verbatim_to_openai_clients],
                         ids=lambda t: t.name)
def test_openai_sdk_accumulates_the_final_completion(t: Transcript, gateway, openai_up, anthropic_up) -> None:  # noqa: ANN001
    g, up, exp = serve(t, gateway, openai_up, anthropic_up)
    client = openai.OpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0)
    body = openai_body(True)
    del body["stream"]
    with client.chat.completions.stream(**body) as stream:
        kinds = [ev.type for ev in stream]
        final = stream.get_final_completion()
    assert "chunk" in kinds
    msg = final.choices[0].message
    assert (msg.content or "") == exp.text
    calls = msg.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == exp.tools
    assert final.choices[0].finish_reason == FINISH[exp.stop]
    if exp.thinking:  # the SDK keeps fields it has no model for
        assert (getattr(msg, "reasoning_content", None) or getattr(msg, "reasoning", None)) == exp.thinking
    assert final.usage is not None
    assert final.usage.prompt_tokens == exp.input_tokens + exp.cache_read
    assert final.usage.completion_tokens == exp.output_tokens
