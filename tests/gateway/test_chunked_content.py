"""wire14: Mistral's reasoning models (magistral) send `content` as a list of chunks, streamed and not: thinking
chunks (`{"type": "thinking", "thinking": [{"type": "text", "text": ...}]}`) then text chunks (`{"type": "text",
"text": ...}`) (mistral docs, capabilities/reasoning; BerriAI/litellm#16272 shows the stream). A streamed answer so
reached the client as an empty 200: the stream decoder read only string content, and the answer was lost. A whole
answer lost its thinking. Now both are read: thinking chunks as thinking, text chunks as text. Real HTTP, the
upstream double sending the bytes, the official SDKs."""

from __future__ import annotations

import json

import pytest

from tests.doubles import Raw
from tests.gateway.conftest import ant, oai
from tests.gateway.test_stream_answered_whole import M, _g


def _chunk(content, finish=None):
    return ("data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "magistral",
                                   "choices": [{"index": 0, "delta": {"content": content},
                                                "finish_reason": finish}]}) + "\n\n")


def _think(t):
    return {"type": "thinking", "thinking": [{"type": "text", "text": t}]}


STREAM = (_chunk([_think("The user ")]) + _chunk([_think("greets.")]) + _chunk([{"type": "text", "text": "Hel"}])
          + _chunk([{"type": "text", "text": "lo!"}]) + _chunk("", "stop") + "data: [DONE]\n\n")
WHOLE = {"id": "c", "object": "chat.completion", "created": 1, "model": "magistral",
         "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": [
             _think("The user greets."), {"type": "text", "text": "Hello!"}]}}],
         "usage": {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12}}


def test_an_anthropic_client_gets_a_chunked_stream(two_tier, openai_up):
    g = _g(two_tier)
    openai_up.script(Raw(body=STREAM, content_type="text/event-stream"))
    with ant(g).messages.stream(model="loc", max_tokens=50, messages=M) as s:
        msg = s.get_final_message()
    kinds = [(b.type, b.thinking if b.type == "thinking" else b.text) for b in msg.content]  # type: ignore[union-attr]
    assert kinds == [("thinking", "The user greets."), ("text", "Hello!")], kinds


def test_a_responses_client_gets_a_chunked_stream(two_tier, openai_up):
    g = _g(two_tier)
    openai_up.script(Raw(body=STREAM, content_type="text/event-stream"))
    with oai(g).responses.stream(model="loc", input="hi") as s:
        r = s.get_final_response()
    assert r.output_text == "Hello!", r


@pytest.mark.parametrize("stream", [False, True])
def test_a_chunked_whole_answer_keeps_its_thinking(two_tier, openai_up, stream):
    g = _g(two_tier)
    openai_up.script(Raw(body=json.dumps(WHOLE)))
    if stream:  # (a whole body answering a stream request: replayed as events)
        with ant(g).messages.stream(model="loc", max_tokens=50, messages=M) as s:
            msg = s.get_final_message()
    else:
        msg = ant(g).messages.create(model="loc", max_tokens=50, messages=M)
    kinds = [(b.type, b.thinking if b.type == "thinking" else b.text) for b in msg.content]  # type: ignore[union-attr]
    assert kinds == [("thinking", "The user greets."), ("text", "Hello!")], kinds
