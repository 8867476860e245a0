"""The Anthropic Messages codec: round trips, streams, validation, errors, OpenAI → Anthropic translation."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from tierwise.canonical import (
    BlockDelta,
    BlockStart,
    BlockStop,
    ImageBlock,
    Message,
    MessageDelta,
    MessageStart,
    MessageStop,
    OtherBlock,
    Ping,
    RedactedThinkingBlock,
    Request,
    Response,
    StreamError,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from tierwise.errors import (
    InvalidRequest,
    Overloaded,
    RateLimited,
    RequestTooLarge,
    TierwiseError,
    UpstreamError,
    UpstreamTimeout,
)
from tierwise.wire import anthropic_messages as am
from tierwise.wire import openai_chat
from tierwise.wire.anthropic_messages.request_encode import DEFAULT_MAX_TOKENS
from tierwise.wire.sse import SSEParser

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
SIG = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxGkaBY0gSbdfLDp4EiMP8+wgdoi8gmNt7LeYH0="


def full_body() -> dict[str, Any]:
    """A request using every block type and request field the codec models."""
    return {
        "model": "claude-x",
        "max_tokens": 2048,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "the user greets", "signature": SIG},
                {"type": "redacted_thinking", "data": "opaque-bytes"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "weather"}},
                {"type": "tool_use", "id": "toolu_2", "name": "snap", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True, "content": [
                    {"type": "text", "text": "camera says"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                ]},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}},
                {"type": "text", "text": "and now?", "cache_control": {"type": "ephemeral"}},
            ]},
        ],
        "tools": [
            {"name": "lookup", "description": "Look up", "input_schema": {"type": "object", "properties": {}}},
            {"name": "snap", "input_schema": {"type": "object", "properties": {"x": {"type": "integer"}}}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "stop_sequences": ["END"],
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "stream": True,
        "metadata": {"user_id": "u-42"},
        "service_tier": "auto",
    }


def decode(body: dict[str, Any]) -> Request:
    return am.decode_request(body, {})


# ---------------------------------------------------------------------------- request round trips


def test_request_decodes_every_block_type():
    req = decode(full_body())
    assert [b.text for b in req.system] == ["You are terse."] and req.system[0].extra == {
        "cache_control": {"type": "ephemeral"}}
    asst = req.messages[1].content
    assert asst[0] == ThinkingBlock("the user greets", SIG)
    assert asst[1] == RedactedThinkingBlock("opaque-bytes")
    assert asst[3] == ToolUseBlock("toolu_1", "lookup", {"q": "weather"})
    user = req.messages[2].content
    assert user[0] == ToolResultBlock("toolu_1", [TextBlock("sunny")])
    assert isinstance(user[1], ToolResultBlock) and user[1].is_error
    assert user[1].content[1] == ImageBlock(media_type="image/png", data=PNG)
    assert user[2] == ImageBlock(url="https://example.com/cat.jpg")
    assert isinstance(user[3], OtherBlock) and user[3].raw["type"] == "document"
    assert req.tools[2].raw == {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    assert req.tool_choice is not None and req.tool_choice.type == "any" and req.tool_choice.disable_parallel
    assert (req.stop, req.temperature, req.top_p, req.top_k, req.stream) == (["END"], 0.5, 0.9, 40, True)
    assert req.user == "u-42" and req.extra == {"service_tier": "auto"}
    assert req.max_tokens == 2048 and req.source_format == "anthropic"


def test_request_reencodes_to_the_same_body_without_pass_through():
    body = full_body()
    req = decode(copy.deepcopy(body)).with_changes()  # drops source_body: forces a fresh encode
    assert req.source_body is None
    out = am.encode_request(req, "claude-x")
    assert out == body


def test_same_format_pass_through_keeps_unknown_fields_and_rewrites_model():
    body = full_body()
    body["future_field"] = {"x": 1}
    out = am.encode_request(decode(body), "upstream-model")
    assert out["future_field"] == {"x": 1} and out["model"] == "upstream-model"
    assert body["model"] == "claude-x"  # the client's body is not mutated


def test_thinking_options_accepted():
    for th in ({"type": "enabled", "budget_tokens": 1024}, {"type": "disabled"}, {"type": "adaptive"}):
        body = {"model": "m", "max_tokens": 2000, "messages": [{"role": "user", "content": "q"}], "thinking": th}
        assert decode(body).thinking == th


# ---------------------------------------------------------------------------- validation


def base(**kw: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "q"}], **kw}


@pytest.mark.parametrize(("body", "path"), [
    ({"model": "m", "messages": [{"role": "user", "content": "q"}]}, "max_tokens"),
    (base(max_tokens="ten"), "max_tokens"),
    (base(max_tokens=0), "max_tokens"),
    (base(messages=[]), "messages"),
    (base(messages="hi"), "messages"),
    (base(model=5), "model"),
    (base(messages=[{"role": "wizard", "content": "x"}]), "messages[0].role"),
    (base(messages=[{"role": "user", "content": 7}]), "messages[0].content"),
    (base(messages=[{"role": "user"}]), "messages[0].content"),
    (base(messages=[{"role": "user", "content": [{"type": "bogus"}]}]), "messages[0].content[0].type"),
    (base(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages[0].content[0].text"),
    (base(messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "ftp"}}]}]),
     "messages[0].content[0].source.type"),
    (base(messages=[{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_x", "content": "r"}]}]), "messages[0].content[0].tool_use_id"),
    (base(messages=[{"role": "user", "content": [
        {"type": "tool_use", "id": "t", "name": "n", "input": {}}]}]), "messages[0].content[0].type"),
    (base(messages=[{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": 3}]}]),
     "messages[0].content[0].input"),
    (base(temperature="hot"), "temperature"),
    (base(stop_sequences=[1]), "stop_sequences"),
    (base(system=5), "system"),
    (base(system=[{"type": "image"}]), "system[0]"),
    (base(tools=[{"name": "t"}]), "tools[0].input_schema"),
    (base(tools=[{"input_schema": {}}]), "tools[0].name"),
    (base(tool_choice={"type": "tool"}), "tool_choice.name"),
    (base(tool_choice={"type": "sometimes"}), "tool_choice.type"),
    (base(thinking={"type": "enabled"}), "thinking.budget_tokens"),
    (base(thinking={"type": "enabled", "budget_tokens": "lots"}), "thinking.budget_tokens"),
    (base(thinking={"type": "maybe"}), "thinking.type"),
    (base(metadata="x"), "metadata"),
    ([1, 2], "body"),
])
def test_bad_requests_name_the_field(body, path):
    with pytest.raises(InvalidRequest) as e:
        decode(body)
    assert e.value.message.startswith(path + ":"), e.value.message
    assert e.value.status == 400


def test_tool_result_must_answer_the_previous_assistant_turn():
    msgs = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_old", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_old", "content": "ok"}]},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_old", "content": "again"}]},
    ]
    with pytest.raises(InvalidRequest, match=r"messages\[4\]\.content\[0\]\.tool_use_id"):
        decode(base(messages=msgs))
    decode(base(messages=msgs[:3]))  # the matching answer is fine


# ---------------------------------------------------------------------------- responses


def full_response() -> dict[str, Any]:
    return {
        "id": "msg_01abc", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": SIG},
            {"type": "redacted_thinking", "data": "zzz"},
            {"type": "text", "text": "Here.", "citations": [{"type": "char_location", "cited_text": "a"}]},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": 1}},
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 3,
                  "cache_read_input_tokens": 7},
    }


def test_response_round_trip():
    body = full_response()
    resp = am.decode_response(body)
    assert isinstance(resp.content[0], ThinkingBlock) and resp.content[0].signature == SIG
    assert isinstance(resp.content[3], ToolUseBlock) and resp.content[3].server
    assert isinstance(resp.content[4], OtherBlock)
    assert resp.stop_reason == "tool_use"
    assert resp.usage == Usage(10, 5, cache_read_tokens=7, cache_write_tokens=3)
    assert orjson.loads(am.encode_response(resp, "claude-x")) == body


def test_response_raw_bytes_pass_through_untouched():
    raw = orjson.dumps(full_response()) + b"  "
    resp = am.decode_response(orjson.loads(raw), raw)
    assert resp.raw_format == "anthropic" and am.encode_response(resp, full_response()["model"]) is raw
    # asked by another name (a route, an alias): the same body naming it (wire/model_name.py)
    assert orjson.loads(am.encode_response(resp, "other")) == {**full_response(), "model": "other"}


@pytest.mark.parametrize(("wire", "canonical"), [
    ("end_turn", "end_turn"), ("max_tokens", "max_tokens"), ("stop_sequence", "stop_sequence"),
    ("tool_use", "tool_use"), ("pause_turn", "pause_turn"), ("refusal", "refusal"),
    ("model_context_window_exceeded", "max_tokens"), ("something_new", "end_turn"),
])
def test_stop_reasons(wire, canonical):
    body = {**full_response(), "stop_reason": wire, "content": []}
    resp = am.decode_response(body)
    assert resp.stop_reason == canonical
    assert orjson.loads(am.encode_response(resp, "m"))["stop_reason"] == canonical


def test_stop_sequence_kept_and_foreign_answer_encoded():
    resp = Response(id="chatcmpl-1", model="gpt", content=[TextBlock("hi"), ThinkingBlock("unsigned")],
                    stop_reason="stop_sequence", stop_sequence="END", usage=Usage(3, 2))
    out = orjson.loads(am.encode_response(resp, "main"))
    assert out["id"].startswith("msg_") and out["model"] == "main" and out["type"] == "message"
    assert out["content"] == [{"type": "text", "text": "hi"},
                              {"type": "thinking", "thinking": "unsigned", "signature": ""}]
    assert out["stop_reason"] == "stop_sequence" and out["stop_sequence"] == "END"
    assert out["usage"] == {"input_tokens": 3, "output_tokens": 2, "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0}


def test_unreadable_or_error_responses_raise_upstream_errors():
    with pytest.raises(UpstreamError, match="cannot read"):
        am.decode_response({"id": "x"})
    with pytest.raises(UpstreamError) as e:
        am.decode_response({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    assert e.value.kind == "overloaded_error" and "busy" in e.value.message and e.value.retryable


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("err", "wire_type"), [
    (InvalidRequest("bad"), "invalid_request_error"),
    (RequestTooLarge("big"), "request_too_large"),
    (RateLimited("slow"), "rate_limit_error"),
    (Overloaded("all down"), "overloaded_error"),
    (UpstreamTimeout("late"), "timeout_error"),  # Anthropic's own 504 type (its SDK's GatewayTimeoutError)
    (UpstreamError("broke"), "api_error"),
    (TierwiseError("where?", status=404, kind="mystery"), "not_found_error"),
    (TierwiseError("who?", status=401, kind="mystery"), "authentication_error"),
])
def test_error_schema(err, wire_type):
    body = orjson.loads(am.encode_error(err))
    assert body == {"type": "error", "error": {"type": wire_type, "message": err.message}}


# ---------------------------------------------------------------------------- streams


def sample_events() -> list[Any]:
    return [
        MessageStart("msg_1", "m", Usage(input_tokens=12, cache_read_tokens=4)),
        BlockStart(0, ThinkingBlock("")),
        BlockDelta(0, "thinking", "let me "),
        BlockDelta(0, "thinking", "think"),
        BlockDelta(0, "signature", SIG),
        BlockStop(0),
        BlockStart(1, TextBlock("")),
        BlockDelta(1, "text", "Hello"),
        BlockDelta(1, "text", " world \u00e9\u4e16"),
        BlockStop(1),
        BlockStart(2, ToolUseBlock("toolu_7", "lookup", {})),
        BlockDelta(2, "input_json", '{"q": '),
        BlockDelta(2, "input_json", '"x"}'),
        BlockStop(2),
        MessageDelta("tool_use", Usage(output_tokens=9)),
        MessageStop(),
    ]


def canonical_without_ids(events: list[Any]) -> list[Any]:
    out = []
    for ev in events:
        if isinstance(ev, Ping):
            continue
        if isinstance(ev, MessageStart):
            ev = MessageStart("", "", ev.usage)
        out.append(ev)
    return out


def encode_all(events: list[Any]) -> bytes:
    enc = am.StreamEncoder("m", decode(base()))
    return b"".join(enc.encode(ev) for ev in events)


def test_stream_encoder_output_decodes_to_the_same_events():
    wire = encode_all(sample_events())
    dec = am.StreamDecoder()
    chunks = []
    for i in range(0, len(wire), 7):  # arbitrary fragmentation, splitting UTF-8 sequences too
        chunks += dec.feed(wire[i:i + 7])
    chunks += dec.finish()
    decoded = [ev for c in chunks for ev in c.events]
    assert canonical_without_ids(decoded) == canonical_without_ids(sample_events())
    assert b"".join(c.raw or b"" for c in chunks) == wire  # raw bytes kept exactly for pass-through
    assert all(c.raw_format == "anthropic" for c in chunks)


def test_stream_wire_shape():
    frames = SSEParser().feed(encode_all(sample_events()))
    names = [f.event for f in frames]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    for f in frames:
        assert orjson.loads(f.data)["type"] == f.event
    start = orjson.loads(frames[0].data)["message"]
    assert start["content"] == [] and start["usage"]["input_tokens"] == 12 and start["id"].startswith("msg_")
    delta = orjson.loads(frames[-2].data)
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == 9


def test_stream_decoder_is_event_by_event():
    wire = encode_all(sample_events())
    frames = SSEParser().feed(wire)
    dec = am.StreamDecoder()
    first = dec.feed(frames[0].raw)
    assert len(first) == 1 and isinstance(first[0].events[0], MessageStart)
    ping = dec.feed(frames[1].raw)
    assert ping[0].events == [] and ping[0].raw == frames[1].raw  # ignored, but relayed as is
    assert dec.feed(frames[2].raw[:-1]) == []  # a half frame waits for the rest
    assert isinstance(dec.feed(frames[2].raw[-1:])[0].events[0], BlockStart)


def test_stream_encoder_renumbers_and_closes_blocks():
    enc = am.StreamEncoder("m", decode(base()))
    events: list[StreamEvent] = [
        BlockStart(5, TextBlock("")), BlockDelta(5, "text", "a"),  # no message_start, odd index, no stop
        MessageDelta("end_turn", Usage(input_tokens=2, output_tokens=1)), MessageStop(),
    ]
    wire = b"".join(enc.encode(ev) for ev in events)
    frames = [orjson.loads(f.data) for f in SSEParser().feed(wire)]
    kinds = [f["type"] for f in frames]
    assert kinds == ["message_start", "ping", "content_block_start", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    assert frames[2]["index"] == 0 and frames[3]["index"] == 0
    assert frames[5]["usage"] == {"output_tokens": 1, "input_tokens": 2}


def test_stream_encoder_adds_message_delta_when_missing():
    wire = encode_all([MessageStart("x", "m"), MessageStop()])
    kinds = [f.event for f in SSEParser().feed(wire)]
    assert kinds == ["message_start", "ping", "message_delta", "message_stop"]


def test_stream_encoder_error_event():
    enc = am.StreamEncoder("m", decode(base()))
    enc.encode(MessageStart("x", "m"))
    for out in (enc.encode_error(Overloaded("every target failed")),
                enc.encode(StreamError("overloaded_error", "every target failed"))):
        (frame,) = SSEParser().feed(out)
        assert frame.event == "error"
        assert orjson.loads(frame.data) == {"type": "error", "error": {"type": "overloaded_error",
                                                                       "message": "every target failed"}}


def sse(event: str, obj: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: ".encode() + orjson.dumps(obj) + b"\n\n"


START = sse("message_start", {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 1}}})
ERROR = sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})


def test_stream_error_mid_stream_becomes_an_event():
    dec = am.StreamDecoder()
    dec.feed(START)
    (chunk,) = dec.feed(ERROR)
    (ev,) = chunk.events
    assert isinstance(ev, StreamError) and ev.error_type == "overloaded_error" and "Overloaded" in ev.message
    assert chunk.raw is None  # re-encoded by the gateway in the client's schema, never relayed raw
    assert dec.finish() == []  # the upstream closes after an error; no second error


def test_one_chunk_per_read_and_an_error_after_the_events_before_it():
    dec = am.StreamDecoder()
    wire = encode_all(sample_events())
    (chunk,) = dec.feed(wire)  # a whole stream in one read: one chunk, its bytes exactly
    assert chunk.raw == wire and canonical_without_ids(chunk.events) == canonical_without_ids(sample_events())
    dec = am.StreamDecoder()
    delta = sse("content_block_start", {"type": "content_block_start", "index": 0,
                                        "content_block": {"type": "text", "text": ""}}) + sse(
        "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}})
    before, failure = dec.feed(START + delta + ERROR)
    assert before.raw == START + delta and isinstance(before.events[-1], BlockDelta)
    assert failure.raw is None and [type(e) for e in failure.events] == [StreamError]


def test_stream_error_outside_anthropic_schema_is_still_an_error():
    # llama-server's /v1/messages sends its own error object as the data of `event: error`.
    dec = am.StreamDecoder()
    dec.feed(START)
    (chunk,) = dec.feed(sse("error", {"code": 500, "message": "bad output", "type": "server_error"}))
    (ev,) = chunk.events
    assert isinstance(ev, StreamError) and ev.error_type == "api_error" and "bad output" in ev.message
    assert chunk.raw is None


def test_stream_error_before_start_raises_so_fallback_can_act():
    with pytest.raises(UpstreamError) as e:
        am.StreamDecoder().feed(ERROR)
    assert e.value.kind == "overloaded_error" and e.value.retryable


def test_stream_cut_short_or_garbage_raises():
    dec = am.StreamDecoder()
    dec.feed(START)
    with pytest.raises(UpstreamError, match="ended early"):
        dec.finish()
    with pytest.raises(UpstreamError, match="not valid JSON"):
        am.StreamDecoder().feed(b"event: message_start\ndata: {oops\n\n")
    with pytest.raises(UpstreamError, match="malformed"):
        am.StreamDecoder().feed(sse("content_block_delta", {"type": "content_block_delta"}))


def test_stream_without_message_stop_is_closed_by_finish():
    dec = am.StreamDecoder()
    dec.feed(START + sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
                                           "usage": {"output_tokens": 3}}))
    (chunk,) = dec.finish()
    assert chunk.events == [MessageStop()]


def test_openai_stream_to_anthropic_client():
    """An OpenAI upstream stream, decoded by the OpenAI codec, re-encoded for an Anthropic client."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return b"data: " + orjson.dumps({"id": "c1", "model": "gpt", "choices": [
            {"index": 0, "delta": delta, "finish_reason": finish}]}) + b"\n\n"
    upstream = (chunk({"role": "assistant", "content": "Hi"})
                + chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{}"}}]})
                + chunk({}, "tool_calls")
                + b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}\n\n'
                + b"data: [DONE]\n\n")
    dec = openai_chat.StreamDecoder()
    events = [ev for c in dec.feed(upstream) + dec.finish() for ev in c.events]
    wire = encode_all(events)
    back = am.StreamDecoder()
    again = [ev for c in back.feed(wire) + back.finish() for ev in c.events]
    assert [type(e).__name__ for e in again] == [
        "MessageStart", "BlockStart", "BlockDelta", "BlockStop", "BlockStart", "BlockDelta", "BlockStop",
        "MessageDelta", "MessageStop"]
    assert again[4] == BlockStart(1, ToolUseBlock("call_1", "f", {}))
    delta = again[7]
    assert isinstance(delta, MessageDelta) and delta.stop_reason == "tool_use"
    assert delta.usage.input_tokens == 4 and delta.usage.output_tokens == 2


# ---------------------------------------------------------------------------- OpenAI client → Anthropic upstream


def openai_request(**kw: Any) -> Request:
    body = {
        "model": "main",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": "weather in Oslo and Bergen?"},
            {"role": "user", "content": [
                {"type": "text", "text": "and this picture"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg", "detail": "low"}},
            ]},
            {"role": "assistant", "content": None, "reasoning_content": "two cities, two calls", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
                {"id": "call.2", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Bergen"}'}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "-5C"},
            {"role": "tool", "tool_call_id": "call.2", "content": "2C"},
            {"role": "user", "content": "thanks, summarise"},
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "temperature": 1.5,
        "stop": "END",
        "user": "u-1",
        "seed": 7,
        **kw,
    }
    return openai_chat.decode_request(body, {})


def test_openai_request_translated_for_anthropic():
    out = am.encode_request(openai_request(), "claude-up")
    assert out["model"] == "claude-up"
    assert out["system"] == "Be brief.\n\nUse metric units."
    assert out["max_tokens"] == DEFAULT_MAX_TOKENS  # OpenAI request had none
    assert out["temperature"] == 1.0  # clamped into Anthropic's range
    assert out["stop_sequences"] == ["END"] and out["metadata"] == {"user_id": "u-1"}
    assert "seed" not in out  # OpenAI-only extras are not forwarded
    assert out["tools"] == [{"name": "get_weather", "description": "Weather for a city",
                             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    msgs = out["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]  # merged into alternation
    assert msgs[0]["content"] == [
        {"type": "text", "text": "weather in Oslo and Bergen?"},
        {"type": "text", "text": "and this picture"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
    ]
    # Unsigned thinking (from a non-Anthropic model) is dropped; tool calls become tool_use with parsed input.
    assert msgs[1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Bergen"}},
    ]
    assert msgs[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "-5C"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "2C"},
        {"type": "text", "text": "thanks, summarise"},
    ]


def test_response_format_becomes_a_system_instruction():
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    out = am.encode_request(openai_request(response_format={"type": "json_schema", "json_schema": {
        "name": "a", "schema": schema}}), "c")
    assert out["system"].startswith("Be brief.\n\nUse metric units.\n\n")
    assert orjson.dumps(schema).decode() in out["system"] and "JSON" in out["system"]
    assert "response_format" not in out
    plain = am.encode_request(openai_request(response_format={"type": "json_object"}), "c")
    assert "JSON object" in plain["system"]


def test_signed_thinking_passes_back_unmodified_and_unsigned_is_dropped():
    req = Request(model="m", messages=[
        Message("user", [TextBlock("q")]),
        Message("assistant", [ThinkingBlock("mine", SIG), ThinkingBlock("foreign"), TextBlock("4")]),
        Message("user", [TextBlock("again")]),
    ], max_tokens=3000, thinking={"type": "enabled", "budget_tokens": 1024}, temperature=0.3)
    out = am.encode_request(req, "c")
    assert out["messages"][1]["content"] == [{"type": "thinking", "thinking": "mine", "signature": SIG},
                                             {"type": "text", "text": "4"}]
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert "temperature" not in out  # Anthropic rejects temperature changes with thinking on


def test_reasoning_effort_becomes_a_thinking_budget_that_fits():
    out = am.encode_request(openai_request(reasoning_effort="high"), "c")
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert out["max_tokens"] > 16384


def test_empty_messages_dropped_and_tool_result_images_kept():
    req = Request(model="m", messages=[
        Message("user", [TextBlock("")]),
        Message("user", [TextBlock("look")]),
        Message("assistant", [ToolUseBlock("t1", "snap", {})]),
        Message("user", [ToolResultBlock("t1", [ImageBlock(media_type="image/jpeg", data="AAAA")])]),
    ])
    msgs = am.encode_request(req, "c")["messages"]
    assert msgs[0] == {"role": "user", "content": "look"}
    assert msgs[2]["content"] == [{"type": "tool_result", "tool_use_id": "t1", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}}]}]


def test_openai_only_inputs_get_a_clear_error_or_map():
    audio = openai_request(messages=[{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}]}])
    with pytest.raises(InvalidRequest, match="audio"):
        am.encode_request(audio, "c")
    pdf = openai_request(messages=[{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBER"}}]}])
    assert am.encode_request(pdf, "c")["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}}]


def test_n_is_left_to_the_deployment_fan_out():
    out = am.encode_request(openai_request(n=3), "c")
    assert "n" not in out


def test_system_role_messages_join_the_system_prompt():
    """Claude Code sends `system`-role messages mid-conversation; they must not be rejected."""
    req = decode(base(system="top", messages=[
        {"role": "user", "content": "q"},
        {"role": "system", "content": "Available agents: a, b"},
        {"role": "system", "content": [{"type": "text", "text": "reminder"}]},
        {"role": "assistant", "content": "ok"},
    ]))
    assert [b.text for b in req.system] == ["top", "Available agents: a, b", "reminder"]
    assert [m.role for m in req.messages] == ["user", "assistant"]
    with pytest.raises(InvalidRequest, match=r"messages\[0\]\.content"):
        decode(base(messages=[{"role": "system", "content": 3}]))


def test_upstream_block_without_a_type_is_an_upstream_error():
    with pytest.raises(UpstreamError):
        am.decode_response({**full_response(), "content": [{"type": ["text"]}]})
    dec = am.StreamDecoder()
    dec.feed(START)
    with pytest.raises(UpstreamError, match="malformed"):
        dec.feed(sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": 5}))


def test_structured_output_request_reaches_an_openai_upstream_as_response_format():
    """Anthropic's `output_config.format` (Claude Code's title request) becomes OpenAI's
    `response_format`; re-encoded to Anthropic it stays native, with no prose instruction added."""
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    body = {"model": "m", "max_tokens": 100, "system": "Title this.",
            "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": schema}},
            "messages": [{"role": "user", "content": "hello"}]}
    req = am.decode_request(body, {})
    out = openai_chat.encode_request(req, "local")
    assert out["response_format"] == {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
    again = am.encode_request(req.with_changes(), "claude")
    assert again["output_config"] == body["output_config"] and again["system"] == "Title this."
    legacy = am.decode_request({**{k: v for k, v in body.items() if k != "output_config"},
                                "output_format": {"type": "json_schema", "schema": schema}}, {})
    assert openai_chat.encode_request(legacy, "local")["response_format"]["json_schema"]["schema"] == schema
    with pytest.raises(InvalidRequest):
        am.decode_request({**body, "output_config": {"format": {"type": "json_schema", "schema": "x"}}}, {})
