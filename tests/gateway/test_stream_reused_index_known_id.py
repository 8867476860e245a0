"""review35b: a server that numbers every tool call 0 (Ollama) and names each piece by its call's id. wire12 relays
the pieces of a second call at the reused index with the second call's place (1); a later piece of the FIRST call
(index 0, its own id "call_a", no name) was taken as the second call's (the index's latest owner): its arguments went
to the wrong call, for the openai SDK on the relayed bytes (`('call_a', 'f', '{"x":')`, `('call_bcall_a', 'g',
'{"y":2}1}')`) and for an Anthropic client on the translated stream alike. A piece whose id is a call already seen goes
to that call when the server reuses indexes. Real HTTP, the upstream double, both official SDKs."""

from __future__ import annotations

import json

from tests.doubles import Raw
from tests.gateway.conftest import ant, oai


def _chunk(call: dict[str, object]) -> bytes:
    obj = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _piece(cid: str, args: str, name: str | None = None) -> dict[str, object]:
    fn = {"arguments": args} if name is None else {"name": name, "arguments": args}
    return {"index": 0, "id": cid, "type": "function", "function": fn}


BODY = (_chunk(_piece("call_a", '{"x":', "f")) + _chunk(_piece("call_b", '{"y":2}', "g"))
        + _chunk(_piece("call_a", "1}"))
        + b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
          b'[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\ndata: [DONE]\n\n')


def _gateway(two_tier):
    return two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})


def test_the_openai_sdk_gets_each_piece_in_its_own_call(two_tier, openai_up):
    g = _gateway(two_tier)
    openai_up.script(Raw(body=BODY, content_type="text/event-stream"))
    with oai(g).chat.completions.stream(model="main", messages=[{"role": "user", "content": "hi"}]) as s:
        done = s.get_final_completion()
    calls = [(c.id, c.function.name, c.function.arguments) for c in done.choices[0].message.tool_calls or []]
    assert calls == [("call_a", "f", '{"x":1}'), ("call_b", "g", '{"y":2}')]


def test_an_anthropic_client_gets_each_piece_in_its_own_call(two_tier, openai_up):
    g = _gateway(two_tier)
    openai_up.script(Raw(body=BODY, content_type="text/event-stream"))
    with ant(g).messages.stream(model="main", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as s:
        m = s.get_final_message()
    assert [(b.id, b.name, b.input) for b in m.content if b.type == "tool_use"] == [
        ("call_a", "f", {"x": 1}), ("call_b", "g", {"y": 2})]
