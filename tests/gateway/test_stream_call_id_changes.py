"""review36b: a server that gives one call's later pieces another id (poolsideai/pool#9, mlx-openai-server before its
PR #216; stream.py already continued the call for canonical clients). The relayed bytes kept the new id and the
official openai SDK's stream helper joins every repeated string of a delta: the caller got `id == "call_acall_b"`,
and the next turn named a call that does not exist; so did choices past the first (wire13's per-choice places).
The later id is relayed no more. Real HTTP, the upstream double streaming hand-made chunks, the openai SDK."""

from __future__ import annotations

import json

import pytest

from tests.doubles import Raw
from tests.gateway.conftest import ant, oai

END = (b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
       b'[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\ndata: [DONE]\n\n')
M = [{"role": "user", "content": "hi"}]


def _chunk(choice: int, call: dict[str, object]) -> bytes:
    obj = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": choice, "delta": {"tool_calls": [call]}, "finish_reason": None}]}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _pieces(choice: int) -> bytes:
    return b"".join(_chunk(choice, p) for p in (
        {"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"x":'}},
        {"index": 0, "id": "call_b", "type": "function", "function": {"arguments": "1"}},
        {"index": 0, "id": "call_c", "type": "function", "function": {"arguments": "}"}},
        {"index": 1, "id": "call_d", "type": "function", "function": {"name": "g", "arguments": "{}"}},
        {"index": 1, "id": "call_b", "type": "function", "function": {"arguments": ""}},
    ))


WANT = [("call_a", "f", {"x": 1}), ("call_d", "g", {})]


@pytest.fixture
def g(two_tier):
    return two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})


@pytest.mark.parametrize("choices", [1, 2])
def test_the_openai_sdk_gets_each_calls_first_id(g, openai_up, choices):
    openai_up.script(Raw(body=b"".join(_pieces(c) for c in range(choices)) + END, content_type="text/event-stream"))
    with oai(g).chat.completions.stream(model="main", messages=M, n=choices) as s:
        done = s.get_final_completion()
    for choice in done.choices:
        got = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls or []]
        assert got == WANT, (choice.index, got)


def test_an_anthropic_client_gets_the_same_calls(g, openai_up):
    openai_up.script(Raw(body=_pieces(0) + END, content_type="text/event-stream"))
    with ant(g).messages.stream(model="main", max_tokens=100, messages=M) as s:
        m = s.get_final_message()
    assert [(b.id, b.name, b.input) for b in m.content if b.type == "tool_use"] == WANT
