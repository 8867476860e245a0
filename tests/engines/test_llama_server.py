"""The gateway in front of a real llama.cpp `llama-server`, with the official SDKs as clients.

llama-server is reached two ways: as an OpenAI-compatible upstream (`/v1/chat/completions`) and
as an Anthropic-compatible one (`/v1/messages`). The tiny model's weights are hand-set
(tests/engines/tiny_gguf.py), so plain replies are known; tool calls and JSON come from
llama-server's grammars, so only their structure is asserted.

Quirks of this engine the gateway must survive: no `ping` events in Anthropic streams, input
token counts that shrink as its prompt cache fills, and, in older builds, HTTP 500 (or an error
in a 200 stream) when the model's output is not valid UTF-8. Newer builds (the one built from
source where the CPU lacks AVX-512) replace such a byte with U+FFFD instead; the invalid-UTF-8
tests ask the engine which it does and check the gateway's answer for that behaviour. The
gateway's handling of raw invalid bytes from an upstream is also covered, on every machine, by
the fault suite's doubles (tests/gateway/test_fault_suite.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import jsonschema
import openai
import pytest

from tests.engines.conftest import LlamaServer
from tests.engines.tiny_gguf import INVALID_UTF8_TRIGGER, REPLY
from tests.harness import GatewayServer, make_config

VIA_OPENAI, VIA_ANTHROPIC = "via-openai", "via-anthropic"
BOTH_UPSTREAMS = pytest.mark.parametrize("route", [VIA_OPENAI, VIA_ANTHROPIC])
# Grammar-made output: enough room for one tool call or object, whatever whitespace the sampler picks.
ROOM = 400

WEATHER_SCHEMA: dict[str, Any] = {
    # No free strings or unbounded numbers: the random-ish model would fill them until max_tokens.
    "type": "object",
    "properties": {"unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}, "days": {"type": "integer"}},
    "required": ["unit", "days"],
    "additionalProperties": False,
}
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "colour": {"type": "string", "enum": ["red", "green"]}},
    "required": ["ok", "colour"],
    "additionalProperties": False,
}
HELLO: Any = [{"role": "user", "content": "Say hello."}]
# An assistant prefill ending in the trigger makes the model emit a byte that is not UTF-8.
BAD_UTF8: Any = [{"role": "user", "content": "Go on."}, {"role": "assistant", "content": "Sure " + INVALID_UTF8_TRIGGER}]


@pytest.fixture(scope="module")
def gateway(llama_server: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    timeouts = {"connect": 2, "read": 60}
    cfg = {
        "ledger": {"path": "ledger.db"},
        # llama-server answers each invalid-UTF-8 request with a 500, and these tests send several:
        # keep the breaker from opening so each test sees the engine, not an open circuit.
        "breaker": {"failures": 100, "cooldown": 0.1},
        "providers": {
            "llama-openai": {"kind": "openai", "base_url": llama_server.url + "/v1", "locality": "local",
                             "timeouts": timeouts},
            "llama-anthropic": {"kind": "anthropic", "base_url": llama_server.url, "locality": "local",
                                "timeouts": timeouts},
        },
        "models": {
            "tiny-openai": {"provider": "llama-openai", "model": "tiny", "context_window": 4096, "logprobs": True},
            "tiny-anthropic": {"provider": "llama-anthropic", "model": "tiny", "context_window": 4096},
        },
        "routes": {VIA_OPENAI: ["tiny-openai"], VIA_ANTHROPIC: ["tiny-anthropic"]},
    }
    server = GatewayServer(make_config(cfg, tmp_path_factory.mktemp("gateway"))).start()
    yield server
    server.stop()


def oai(g: GatewayServer) -> openai.OpenAI:
    return g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0, timeout=120))


def ant(g: GatewayServer) -> anthropic.Anthropic:
    return g.keep(anthropic.Anthropic(base_url=g.url, api_key="test", max_retries=0, timeout=120))


def ledger_record(g: GatewayServer, request_id: str) -> Any:
    """The request's ledger row. The gateway submits it just after the response is sent, so a
    client can get here first: wait for the submission (bounded), not for a duration."""
    deadline = time.monotonic() + 10
    while True:
        g.flush()
        rec = g.ledger.get(request_id)
        if rec is not None or time.monotonic() > deadline:
            return rec
        time.sleep(0.01)


def assert_still_serving(g: GatewayServer, route: str) -> None:
    reply = oai(g).chat.completions.create(model=route, messages=HELLO, temperature=0, max_tokens=50)
    assert reply.choices[0].message.content == REPLY


# ------------------------------------------------------------------------------------------ plain chat


@BOTH_UPSTREAMS
def test_openai_client_gets_the_models_reply(gateway, route):
    reply = oai(gateway).chat.completions.create(model=route, messages=HELLO, temperature=0, max_tokens=50)
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == REPLY
    assert choice.finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens > 0


@BOTH_UPSTREAMS
def test_anthropic_client_gets_the_models_reply(gateway, route):
    msg = ant(gateway).messages.create(model=route, max_tokens=50, messages=HELLO)
    assert msg.type == "message" and msg.role == "assistant"
    assert [b.type for b in msg.content] == ["text"]
    assert isinstance(msg.content[0], anthropic.types.TextBlock) and msg.content[0].text == REPLY
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens > 0


@BOTH_UPSTREAMS
def test_openai_stream_carries_the_reply_and_usage(gateway, route):
    stream = oai(gateway).chat.completions.create(model=route, messages=HELLO, temperature=0, max_tokens=50,
                                                  stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens > 0


@BOTH_UPSTREAMS
def test_anthropic_stream_works_without_pings(gateway, route):
    with ant(gateway).messages.stream(model=route, max_tokens=50, messages=HELLO) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert "content_block_delta" in events
    assert final.content[0].type == "text" and final.content[0].text == REPLY
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


# ------------------------------------------------------------------------------ grammar-enforced output


WEATHER_TOOL_OPENAI: Any = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather forecast", "parameters": WEATHER_SCHEMA}}
WEATHER_TOOL_ANTHROPIC: Any = {"name": "get_weather", "description": "Weather forecast", "input_schema": WEATHER_SCHEMA}


@BOTH_UPSTREAMS
def test_required_tool_call_is_well_formed_for_openai_clients(gateway, route):
    reply = oai(gateway).chat.completions.create(
        model=route, messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER_TOOL_OPENAI],
        tool_choice="required", max_tokens=ROOM)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and calls[0].type == "function" and calls[0].id
    assert calls[0].function.name == "get_weather"
    jsonschema.validate(json.loads(calls[0].function.arguments), WEATHER_SCHEMA)


@BOTH_UPSTREAMS
def test_required_tool_call_is_well_formed_for_anthropic_clients(gateway, route):
    msg = ant(gateway).messages.create(
        model=route, max_tokens=ROOM, messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL_ANTHROPIC], tool_choice={"type": "any"})
    assert msg.stop_reason == "tool_use"
    uses = [b for b in msg.content if b.type == "tool_use"]
    assert uses and uses[0].name == "get_weather" and uses[0].id
    jsonschema.validate(uses[0].input, WEATHER_SCHEMA)


@BOTH_UPSTREAMS
def test_streamed_tool_call_reassembles_for_openai_clients(gateway, route):
    stream = oai(gateway).chat.completions.create(
        model=route, messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER_TOOL_OPENAI],
        tool_choice="required", max_tokens=ROOM, stream=True)
    names, arguments, finish = "", "", None
    for chunk in stream:
        if not chunk.choices:
            continue
        for call in chunk.choices[0].delta.tool_calls or []:
            assert call.index == 0
            names += call.function.name or "" if call.function else ""
            arguments += call.function.arguments or "" if call.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and names == "get_weather"
    jsonschema.validate(json.loads(arguments), WEATHER_SCHEMA)


def test_json_schema_response_format_yields_valid_json(gateway):
    # Only llama-server's OpenAI endpoint enforces json_schema; the Anthropic wire has no such switch.
    reply = oai(gateway).chat.completions.create(
        model=VIA_OPENAI, messages=[{"role": "user", "content": "Answer in JSON."}], max_tokens=ROOM,
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA}})
    assert reply.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(reply.choices[0].message.content or ""), ANSWER_SCHEMA)


def test_logprobs_come_through_on_the_openai_path(gateway):
    reply = oai(gateway).chat.completions.create(model=VIA_OPENAI, messages=HELLO, temperature=0, max_tokens=50,
                                                 logprobs=True, top_logprobs=2)
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    content = logprobs.content
    assert "".join(t.token for t in content) == REPLY
    for token in content:
        assert token.logprob <= 0
        assert 1 <= len(token.top_logprobs) <= 2 and token.top_logprobs[0].token == token.token


# ---------------------------------------------------------------------------------------------- ledger


@BOTH_UPSTREAMS
def test_usage_is_recorded_in_the_ledger(gateway, route):
    raw = oai(gateway).chat.completions.with_raw_response.create(model=route, messages=HELLO, temperature=0,
                                                                  max_tokens=50)
    reply = raw.parse()
    rec = ledger_record(gateway, raw.headers["x-tierwise-request-id"])
    assert rec is not None and rec.status == 200 and rec.route == route
    assert rec.locality == "local" and rec.cost_usd == 0
    assert reply.usage is not None and rec.output_tokens == reply.usage.completion_tokens
    assert rec.input_tokens + rec.cache_read_tokens > 0


def test_prompt_size_in_ledger_does_not_depend_on_llamas_prompt_cache(gateway):
    """llama-server's Anthropic endpoint counts cached prompt tokens apart from `input_tokens`."""
    client = ant(gateway)
    messages: Any = [{"role": "user", "content": "A prompt only this test sends, twice."}]
    ids = [client.messages.with_raw_response.create(model=VIA_ANTHROPIC, max_tokens=50, messages=messages
                                                    ).headers["x-tierwise-request-id"]
           for _ in range(2)]
    first, second = (ledger_record(gateway, i) for i in ids)
    assert second.cache_read_tokens > first.cache_read_tokens  # the cache did change the upstream's counts
    assert first.input_tokens + first.cache_read_tokens == second.input_tokens + second.cache_read_tokens


# ------------------------------------------------------------------------- invalid UTF-8 from the model


@pytest.fixture(scope="module")
def engine_fails_invalid_utf8(llama_server: LlamaServer) -> bool:
    """Whether this llama-server build fails a reply that is not UTF-8 (asked directly, not through
    the gateway); if not, it must have replaced the byte with U+FFFD."""
    resp = httpx.post(llama_server.url + "/v1/chat/completions", timeout=120,
                      json={"model": "tiny", "messages": BAD_UTF8, "max_tokens": 20, "temperature": 0})
    if resp.status_code >= 500:
        return True
    assert resp.status_code == 200 and "\ufffd" in resp.json()["choices"][0]["message"]["content"], resp.text
    return False


@BOTH_UPSTREAMS
def test_invalid_utf8_becomes_an_openai_error(gateway, route, engine_fails_invalid_utf8):
    if not engine_fails_invalid_utf8:  # the engine replaced the byte: its reply comes through whole
        reply = oai(gateway).chat.completions.create(model=route, messages=BAD_UTF8, temperature=0, max_tokens=20)
        assert "\ufffd" in (reply.choices[0].message.content or "") and reply.choices[0].finish_reason
        assert_still_serving(gateway, route)
        return
    with pytest.raises(openai.APIStatusError) as caught:
        oai(gateway).chat.completions.create(model=route, messages=BAD_UTF8, temperature=0, max_tokens=20)
    assert caught.value.status_code >= 500
    body = caught.value.response.json()
    assert set(body) == {"error"} and body["error"]["message"] and body["error"]["type"]
    assert "Traceback" not in caught.value.response.text
    assert_still_serving(gateway, route)


@BOTH_UPSTREAMS
def test_invalid_utf8_becomes_an_anthropic_error(gateway, route, engine_fails_invalid_utf8):
    if not engine_fails_invalid_utf8:
        msg = ant(gateway).messages.create(model=route, max_tokens=20, messages=BAD_UTF8)
        text = "".join(b.text for b in msg.content if b.type == "text")
        assert "\ufffd" in text and msg.stop_reason
        assert_still_serving(gateway, route)
        return
    with pytest.raises(anthropic.APIStatusError) as caught:
        ant(gateway).messages.create(model=route, max_tokens=20, messages=BAD_UTF8)
    assert caught.value.status_code >= 500
    body = caught.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] and body["error"]["message"]
    assert_still_serving(gateway, route)


def sse_events(raw: str) -> list[tuple[str, Any]]:
    """(event name or "", parsed data) for each event of a server-sent-events body."""
    events = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        name, data = "", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            text = "\n".join(data)
            events.append((name, text if text == "[DONE]" else json.loads(text)))
    return events


def stream_raw(g: GatewayServer, path: str, route: str, messages: list[dict[str, Any]]) -> tuple[int, str]:
    with httpx.stream("POST", g.url + path, timeout=120, json={"model": route, "max_tokens": 20, "stream": True,
                                                             "temperature": 0, "messages": messages}) as resp:
        return resp.status_code, resp.read().decode()


def failed_before_the_first_byte(status: int, body: str) -> bool:
    """The engine failed before its stream sent anything (llama-server's output parser can refuse the tiny model's
    first tokens): the gateway then answers as for any upstream error, a 5xx in the client's schema, which the
    callers check; a stream that had begun must carry its error inside it (their own asserts)."""
    if status == 200:
        return False
    assert status >= 500 and "Traceback" not in body, body
    return True


# llama-server streams its own error object, `{"code":500,"message":...,"type":"server_error"}`, as an
# `event: error`: on the Anthropic endpoint that is not Anthropic's error schema.
# The gateway must re-encode it.


@BOTH_UPSTREAMS
def test_invalid_utf8_mid_stream_is_an_anthropic_error_event(gateway, route, engine_fails_invalid_utf8):
    # llama-server answers 200, sends a first event, then an error: the client must get an error in
    # its own stream format, not a clean end, a broken connection or the upstream's error object.
    status, body = stream_raw(gateway, "/v1/messages", route, BAD_UTF8)
    events = sse_events(body)
    if not engine_fails_invalid_utf8:  # a clean stream that carries the replacement character
        assert status == 200 and "error" not in [n for n, _ in events] and events[-1][0] == "message_stop", body
        with ant(gateway).messages.stream(model=route, max_tokens=20, messages=BAD_UTF8) as stream:
            assert "\ufffd" in stream.get_final_text()
        assert_still_serving(gateway, route)
        return
    if failed_before_the_first_byte(status, body):
        error = json.loads(body)
        assert error["type"] == "error" and error["error"]["type"] and error["error"]["message"], body
        return
    errors = [data for name, data in events if name == "error"]
    assert status == 200 and errors, body
    for data in errors:
        assert data["type"] == "error" and data["error"]["type"] and data["error"]["message"], data
    assert "message_stop" not in [name for name, _ in events]
    with pytest.raises(anthropic.APIError):
        with ant(gateway).messages.stream(model=route, max_tokens=20, messages=BAD_UTF8) as stream:
            for _ in stream:
                pass
    assert_still_serving(gateway, route)


@BOTH_UPSTREAMS
def test_invalid_utf8_mid_stream_is_an_openai_error_chunk(gateway, route, engine_fails_invalid_utf8):
    status, body = stream_raw(gateway, "/v1/chat/completions", route, BAD_UTF8)
    events = sse_events(body)
    if not engine_fails_invalid_utf8:
        assert status == 200 and events[-1] == ("", "[DONE]"), body
        assert not any(isinstance(c, dict) and "error" in c for _, c in events), body
        chunks = oai(gateway).chat.completions.create(model=route, messages=BAD_UTF8, max_tokens=20, stream=True)
        assert "\ufffd" in "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
        assert_still_serving(gateway, route)
        return
    if failed_before_the_first_byte(status, body):
        error = json.loads(body)
        assert set(error) == {"error"} and error["error"]["message"] and error["error"]["type"], body
        return
    errors = [data["error"] for _, data in events if isinstance(data, dict) and "error" in data]
    assert status == 200 and errors, body
    for error in errors:
        assert error["message"] and error["type"], error
    assert (("", "[DONE]") not in events) and not any(
        c.get("choices") and c["choices"][0].get("finish_reason") for _, c in events if isinstance(c, dict))
    with pytest.raises(openai.APIError):
        for _ in oai(gateway).chat.completions.create(model=route, messages=BAD_UTF8, max_tokens=20, stream=True,
                                                      temperature=0):
            pass
    assert_still_serving(gateway, route)
