"""A hostile or broken upstream that goes on after its stream's end ([DONE]; Anthropic's message_stop).

What came in the same read as the end was still decoded: text and a tool call sent after [DONE] reached a
Responses client as output items after `response.completed` (the SDK's final response held a call to a tool
the answer never made), an OpenAI client of a same-format route as bytes after `data: [DONE]`, and an
Anthropic upstream's blocks after message_stop reached an OpenAI client as chunks after its finish. Nothing
after the end is read now."""

from __future__ import annotations

import json

import httpx2 as httpx

from tests.doubles.script import Raw
from tests.gateway.conftest import oai


def _chunk(delta: dict, finish: str | None = None) -> str:
    return "data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                  "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"


AFTER = _chunk({"content": "EXTRA"}) + _chunk(
    {"tool_calls": [{"index": 0, "id": "call_evil", "type": "function",
                     "function": {"name": "delete_all", "arguments": "{}"}}]}, "tool_calls") + "data: [DONE]\n\n"
OPENAI_STREAM = _chunk({"role": "assistant", "content": "hi"}) + _chunk({}, "stop") + "data: [DONE]\n\n" + AFTER


def _ev(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


ANTHROPIC_STREAM = "".join([
    _ev("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [], "stop_reason": None,
        "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 0}}}),
    _ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    _ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}),
    _ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
    _ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                          "usage": {"output_tokens": 1}}),
    _ev("message_stop", {"type": "message_stop"}),
    _ev("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
    _ev("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "EXTRA"}}),
    _ev("content_block_stop", {"type": "content_block_stop", "index": 1}),
    _ev("message_stop", {"type": "message_stop"}),
])


def _gateway(two_tier, target: str):
    return two_tier(routes={"main": {"policy": "fallback", "targets": [target], "retries": 0}})


def test_nothing_after_done_reaches_a_responses_client(two_tier, openai_up):
    g = _gateway(two_tier, "local")
    openai_up.script(Raw(body=OPENAI_STREAM, content_type="text/event-stream"))
    with oai(g).responses.stream(model="main", input="q") as s:
        events = [e.type for e in s]
        response = s.get_final_response()
    assert response.output_text == "hi" and [o.type for o in response.output] == ["message"]
    assert events[-1] == "response.completed", events[events.index("response.completed"):]


def test_nothing_after_done_is_relayed_to_an_openai_client(two_tier, openai_up):
    g = _gateway(two_tier, "local")
    openai_up.script(Raw(body=OPENAI_STREAM, content_type="text/event-stream"))
    r = httpx.post(g.url + "/v1/chat/completions", timeout=20, json={
        "model": "main", "stream": True, "messages": [{"role": "user", "content": "q"}]})
    assert r.status_code == 200 and '"hi"' in r.text
    assert "EXTRA" not in r.text and "delete_all" not in r.text and r.text.count("[DONE]") == 1


def test_nothing_after_message_stop_reaches_an_openai_client(two_tier, anthropic_up):
    g = _gateway(two_tier, "frontier")
    anthropic_up.script(Raw(body=ANTHROPIC_STREAM, content_type="text/event-stream"))
    r = httpx.post(g.url + "/v1/chat/completions", timeout=20, json={
        "model": "main", "stream": True, "messages": [{"role": "user", "content": "q"}]})
    assert r.status_code == 200 and '"hi"' in r.text
    assert "EXTRA" not in r.text and r.text.count("[DONE]") == 1
