"""wire13 (review35b's left): a server that repeats a tool call's header (`id`, `name`) on every piece of its
arguments, with correct indexes. The official openai SDK's stream helper joins every repeated string of a delta, so the
relayed bytes gave the caller `id == "call_acall_acall_a"` and `name == "fff"` (the next turn then names a call that
does not exist); a call whose first piece had a name and no arguments reached an Anthropic client as `ff`. A piece
that repeats its call's id (and then its name) is relayed without them, and the canonical call keeps one name.
Real HTTP, the upstream double streaming hand-made chunks, both official SDKs."""

from __future__ import annotations

import json

import pytest

from tests.doubles import Raw
from tests.gateway.conftest import ant, oai

END = (b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
       b'[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\ndata: [DONE]\n\n')


def _chunk(calls: list[dict[str, object]]) -> bytes:
    obj = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": None}]}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _piece(index: int, cid: str, name: str, args: str) -> dict[str, object]:
    return {"index": index, "id": cid, "type": "function", "function": {"name": name, "arguments": args}}


# each call's header on every piece; the first pieces carry no arguments (the way a header is usually sent first)
BODY = b"".join(_chunk([p]) for p in (
    _piece(0, "call_a", "f", ""), _piece(0, "call_a", "f", '{"x":'), _piece(0, "call_a", "f", "1}"),
    _piece(1, "call_b", "g", ""), _piece(1, "call_b", "g", '{"y":2}'))) + END
WANT = [("call_a", "f", {"x": 1}), ("call_b", "g", {"y": 2})]


@pytest.fixture
def g(two_tier, openai_up):
    openai_up.script(Raw(body=BODY, content_type="text/event-stream"))
    return two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})


def test_the_openai_sdk_gets_each_id_and_name_once(g):
    with oai(g).chat.completions.stream(model="main", messages=[{"role": "user", "content": "hi"}]) as s:
        done = s.get_final_completion()
    calls = [(c.id, c.function.name, json.loads(c.function.arguments))
             for c in done.choices[0].message.tool_calls or []]
    assert calls == WANT


def test_an_anthropic_client_gets_each_name_once(g):
    with ant(g).messages.stream(model="main", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as s:
        m = s.get_final_message()
    assert [(b.id, b.name, b.input) for b in m.content if b.type == "tool_use"] == WANT
