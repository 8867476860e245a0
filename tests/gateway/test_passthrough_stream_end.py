"""wire14: an upstream stream in the client's own format (relayed as sent) that ends without its last event (no
`data: [DONE]`, no `message_stop`: servers and proxies that close the body after the finish) got the end the
gateway makes for a stream it encodes itself, from an encoder that had seen nothing: a second opening (another id,
an Anthropic `message_start` and `ping` in the middle of the message), a second finish, and usage of zeros after the
upstream's own. The SDKs keep the last usage they read: an OpenAI client read 0 prompt and 0 completion tokens, an
Anthropic client 0 output tokens, for an answer the upstream counted. Now only the missing end is added. Real HTTP,
the upstream doubles sending the bytes, the official SDKs."""

from __future__ import annotations

import json

import httpx

from tests.doubles import Raw
from tests.gateway.conftest import ant, oai
from tests.gateway.test_stream_answered_whole import M, _g


def _oai(delta, finish=None, **kw):
    return "data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [
        {"index": 0, "delta": delta, "finish_reason": finish}], **kw}) + "\n\n"


OAI_NO_DONE = (_oai({"role": "assistant", "content": "hel"}) + _oai({"content": "lo"}) + _oai({}, "stop")
               + 'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],'
                 '"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}\n\n')


def _ev(t, d):
    return f"event: {t}\ndata: " + json.dumps({"type": t, **d}) + "\n\n"


ANT_NO_STOP = (_ev("message_start", {"message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "big",
                                                 "content": [], "stop_reason": None, "stop_sequence": None,
                                                 "usage": {"input_tokens": 3, "output_tokens": 1}}})
               + _ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
               + _ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "hello"}})
               + _ev("content_block_stop", {"index": 0})
               + _ev("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                       "usage": {"output_tokens": 2}}))


def test_an_openai_client_keeps_the_upstreams_usage(two_tier, openai_up):
    g = _g(two_tier)
    openai_up.script(Raw(body=OAI_NO_DONE, content_type="text/event-stream"))
    chunks = list(oai(g).chat.completions.create(model="loc", messages=M, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usages = [(c.usage.prompt_tokens, c.usage.completion_tokens) for c in chunks if c.usage is not None]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert (text, usages, finishes, {c.id for c in chunks}) == ("hello", [(5, 7)], ["stop"], {"c1"}), \
        (text, usages, finishes, {c.id for c in chunks})


def test_an_anthropic_client_keeps_the_upstreams_usage(two_tier, anthropic_up):
    g = _g(two_tier)
    anthropic_up.script(Raw(body=ANT_NO_STOP, content_type="text/event-stream"))
    with ant(g).messages.stream(model="main", max_tokens=20, messages=M) as s:
        msg = s.get_final_message()
    assert (msg.id, msg.content[0].text, msg.usage.output_tokens) == ("msg_1", "hello", 2), msg  # type: ignore[union-attr]
    anthropic_up.script(Raw(body=ANT_NO_STOP, content_type="text/event-stream"))
    with httpx.stream("POST", g.url + "/v1/messages", json={"model": "main", "max_tokens": 20, "messages": M,
                                                            "stream": True},
                      headers={"x-api-key": "k", "anthropic-version": "2023-06-01"}, timeout=30) as r:
        events = [ln.removeprefix("event: ") for ln in r.iter_lines() if ln.startswith("event: ")]
    assert events == ["message_start", "content_block_start", "content_block_delta", "content_block_stop",
                      "message_delta", "message_stop"], events
