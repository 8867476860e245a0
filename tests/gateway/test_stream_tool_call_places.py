"""Tool calls of a streamed OpenAI answer relayed to an OpenAI client (wire12): the gateway passes the upstream's bytes
through, and servers number their calls in their own ways (from 1: Claude behind OpenAI-compatible proxies; -1: GLM,
Bedrock gateways; with gaps; with no `index`: Gemini's endpoint; 0 for every call: Ollama). wire/openai_chat/stream.py
already read them all for translated streams, but relayed as sent the official openai SDK's stream helper
(`client.chat.completions.stream(...)`, which indexes its list of calls by `index`) raised IndexError or
RuntimeError in the caller's code, or joined two calls' arguments into one. Now a chunk naming a call by anything
but its place (0, 1, 2 …) is relayed with that place. Real HTTP, the upstream double streaming hand-made chunks."""

from __future__ import annotations

import json

import pytest

from tests.doubles import Raw
from tests.gateway.conftest import oai


def _chunk(calls: list[dict[str, object]], finish: str | None = None) -> bytes:
    obj = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": calls}, "finish_reason": finish}]}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _call(index: object, cid: str, name: str, args: str) -> dict[str, object]:
    call: dict[str, object] = {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
    if index is not None:
        call["index"] = index
    return call


def _stream(first: object, second: object) -> bytes:
    return (_chunk([_call(first, "call_a", "get_weather", '{"city": "Paris"}')])
            + _chunk([_call(second, "call_b", "get_time", '{"zone": "CET"}')])
            + b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
              b'[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\ndata: [DONE]\n\n')


NUMBERINGS = {"from one": (1, 2), "minus one": (-1, -2), "a gap": (0, 5), "none": (None, None), "all zero": (0, 0)}


@pytest.mark.parametrize("numbering", list(NUMBERINGS))
def test_the_sdks_stream_helper_gets_every_call_whole(two_tier, openai_up, numbering):
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    openai_up.script(Raw(body=_stream(*NUMBERINGS[numbering]), content_type="text/event-stream"))
    with oai(g).chat.completions.stream(model="main", messages=[{"role": "user", "content": "hi"}]) as s:
        done = s.get_final_completion()
    calls = [(c.id, c.function.name, c.function.arguments) for c in done.choices[0].message.tool_calls or []]
    assert calls == [("call_a", "get_weather", '{"city": "Paris"}'), ("call_b", "get_time", '{"zone": "CET"}')]


def test_calls_numbered_in_place_pass_through_as_sent(two_tier, openai_up):
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    sent = _stream(0, 1)
    openai_up.script(Raw(body=sent, content_type="text/event-stream"))
    with oai(g).chat.completions.with_streaming_response.create(
            model="main", messages=[{"role": "user", "content": "hi"}], stream=True) as r:
        got = r.read()
    named = sent.replace(b'"model": "m"', b'"model":"main"')  # (the name the client asked for: wire/model_name.py)
    assert named.split(b"\n\n")[:2] == got.split(b"\n\n")[:2]  # the calls' chunks byte for byte
