"""wire13: a stream request answered with one JSON body (content-type lies both ways). Proxies send an error object
with 200 to `stream: true` (one-api, LiteLLM-style), and some servers ignore `stream` and send the whole answer. The
gateway found no stream event in it and told the client `upstream stream ended early` (502): the upstream's own error
was lost and a good answer thrown away. Now the body is read as a non-streamed answer: an error object is that error
(in the client's schema, its address masked), an answer is streamed to the client. Real HTTP, the upstream doubles,
both official SDKs."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from tests.doubles import Raw
from tests.gateway.conftest import ant, oai

M = [{"role": "user", "content": "hi"}]
COMPLETION = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "héllo"}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "big", "stop_reason": "end_turn",
           "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 2},
           "content": [{"type": "text", "text": "héllo"}]}
ERROR = {"error": {"message": "model 'qwen-local' not found, try pulling it first (at 10.1.2.3:11434)",
                   "type": "invalid_request_error", "code": "model_not_found"}}


def _g(two_tier):
    return two_tier(routes={"loc": {"policy": "fallback", "targets": ["local"], "retries": 0},
                            "main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})


def _openai_text(g, model: str) -> str:
    return "".join(c.choices[0].delta.content or "" for c in
                   oai(g).chat.completions.create(model=model, messages=M, stream=True) if c.choices)


@pytest.mark.parametrize("content_type", ["application/json", "text/event-stream"])
def test_an_openai_client_streams_a_whole_answer(two_tier, openai_up, content_type):
    g = _g(two_tier)
    openai_up.script(Raw(body=json.dumps(COMPLETION).encode(), content_type=content_type))
    assert _openai_text(g, "loc") == "héllo"


def test_an_anthropic_client_streams_a_whole_message(two_tier, anthropic_up):
    g = _g(two_tier)
    anthropic_up.script(Raw(body=json.dumps(MESSAGE).encode()))
    with ant(g).messages.stream(model="main", max_tokens=10, messages=M) as s:
        m = s.get_final_message()
    assert [b.text for b in m.content] == ["héllo"] and m.usage.output_tokens == 2


def test_an_error_body_is_the_upstreams_error(two_tier, openai_up):
    g = _g(two_tier)
    openai_up.script(Raw(body=json.dumps(ERROR).encode()))
    with pytest.raises(openai.APIStatusError) as e:
        _openai_text(g, "loc")
    said = str(e.value)
    assert "not found" in said and "10.1.2.3" not in said, said


def test_an_anthropic_error_body_is_the_upstreams_error(two_tier, anthropic_up):
    g = _g(two_tier)
    anthropic_up.script(Raw(body=json.dumps({"type": "error", "error": {
        "type": "not_found_error", "message": "model: big-model not found"}}).encode()))
    with pytest.raises(anthropic.APIStatusError) as e, \
            ant(g).messages.stream(model="main", max_tokens=10, messages=M) as s:
        s.get_final_message()
    assert "big-model not found" in str(e.value), str(e.value)


def test_a_body_neither_stream_nor_json_is_a_502_in_schema(two_tier, openai_up):
    g = _g(two_tier)
    openai_up.script(Raw(body=b'{"choices": [', content_type="application/json"))
    with pytest.raises(openai.APIStatusError) as e:
        _openai_text(g, "loc")
    assert e.value.status_code == 502 and isinstance(e.value.body, dict), e.value
