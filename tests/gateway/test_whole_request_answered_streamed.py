"""review36b: a non-streamed request answered with a stream (the reverse of wire13's whole-body streams): a proxy
that forces `stream: true`, a server that ignores `stream: false`. The gateway read the SSE as JSON and the client got
`sent a body that is not valid JSON` (502, counted against the deployment) for a good answer. Now the events are read
by the codec's own stream decoder, within its bounds, into the answer they make (text, tool calls, usage); the
stream's error event is the upstream's error; a stream cut short, or one for `n > 1` choices, is a 502 in the
client's schema. Real HTTP, the upstream doubles, both official SDKs."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from tests.doubles import Raw
from tests.gateway.conftest import ant, oai
from tests.gateway.test_stream_answered_whole import M, _g


def _oai_chunk(delta: dict[str, object], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    obj: dict[str, object] = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                              "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        obj["usage"] = usage
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


TEXT = (_oai_chunk({"role": "assistant", "content": "hé"}) + _oai_chunk({"content": "llo"})
        + _oai_chunk({}, "stop", {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}) + b"data: [DONE]\n\n")
CALL = (_oai_chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                                                          "function": {"name": "f", "arguments": '{"x":'}}]})
        + _oai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]})
        + _oai_chunk({}, "tool_calls") + b"data: [DONE]\n\n")


def _sse(event: str, data: dict[str, object]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


MESSAGE = (_sse("message_start", {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "big", "content": [], "stop_reason": None,
    "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}}})
    + _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}})
    + _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "text_delta", "text": "héllo"}})
    + _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    + _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                             "usage": {"output_tokens": 2}})
    + _sse("message_stop", {"type": "message_stop"}))


@pytest.mark.parametrize("content_type", ["text/event-stream", "application/json"])
def test_an_openai_client_gets_the_streamed_answer_whole(two_tier, openai_up, content_type):
    g = _g(two_tier)
    openai_up.script(Raw(body=TEXT, content_type=content_type))
    r = oai(g).chat.completions.create(model="loc", messages=M)
    assert r.choices[0].message.content == "héllo" and r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (3, 2)


def test_a_streamed_tool_call_is_one_call(two_tier, openai_up):
    g = _g(two_tier)
    openai_up.script(Raw(body=CALL, content_type="text/event-stream"))
    r = oai(g).chat.completions.create(model="loc", messages=M)
    calls = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in r.choices[0].message.tool_calls or []]
    assert calls == [("call_a", "f", {"x": 1})] and r.choices[0].finish_reason == "tool_calls"


def test_an_anthropic_client_gets_the_streamed_message_whole(two_tier, anthropic_up):
    g = _g(two_tier)
    anthropic_up.script(Raw(body=MESSAGE, content_type="text/event-stream"))
    m = ant(g).messages.create(model="main", max_tokens=10, messages=M)
    assert [b.text for b in m.content] == ["héllo"] and m.usage.output_tokens == 2 and m.stop_reason == "end_turn"


def test_the_streams_error_event_is_the_upstreams_error(two_tier, anthropic_up):
    g = _g(two_tier)
    anthropic_up.script(Raw(body=MESSAGE.split(b"event: content_block_start")[0] + _sse("error", {
        "type": "error", "error": {"type": "overloaded_error", "message": "Overloaded at 10.1.2.3:8000"}}),
        content_type="text/event-stream"))
    with pytest.raises(anthropic.APIStatusError) as e:
        ant(g).messages.create(model="main", max_tokens=10, messages=M)
    said = str(e.value)
    assert "Overloaded" in said and "10.1.2.3" not in said, said


@pytest.mark.parametrize("body", [TEXT[: TEXT.index(b"data: [DONE]") - 60], TEXT[:40]])
def test_a_stream_cut_short_is_a_502_in_schema(two_tier, openai_up, body):
    g = _g(two_tier)
    openai_up.script(Raw(body=body, content_type="text/event-stream"))
    with pytest.raises(openai.APIStatusError) as e:
        oai(g).chat.completions.create(model="loc", messages=M)
    assert e.value.status_code == 502 and isinstance(e.value.body, dict), e.value


def test_a_stream_for_two_choices_is_not_read_as_one(two_tier, openai_up):
    g = _g(two_tier)
    openai_up.script(Raw(body=TEXT, content_type="text/event-stream"))
    with pytest.raises(openai.APIStatusError) as e:
        oai(g).chat.completions.create(model="loc", messages=M, n=2)
    assert e.value.status_code == 502 and "2 choices" in str(e.value), e.value
