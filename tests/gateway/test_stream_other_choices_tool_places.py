"""wire13 (review35b's left): with `n > 1` (or a server sending a second choice unasked), wire12's renumbering of
tool calls covered the first choice only; the other choices' calls were relayed with the server's own numbers. The
official openai SDK's stream helper indexes each choice's list of calls by `index`: calls numbered from 1 with a
later piece of the first got the pieces joined to the wrong call (`{"b":2}1}`), and no `index` raised in the caller's
code. Each choice's calls are now relayed by their place in that choice (0, 1, 2 …). Real HTTP, the upstream double,
the official openai SDK."""

from __future__ import annotations

import json

import pytest

from tests.doubles import Raw
from tests.gateway.conftest import oai


def _chunk(choice: int, calls: list[dict[str, object]]) -> bytes:
    obj = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": choice, "delta": {"role": "assistant", "tool_calls": calls}, "finish_reason": None}]}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _call(index: object, cid: str | None, name: str | None, args: str) -> dict[str, object]:
    fn: dict[str, object] = {"arguments": args}
    call: dict[str, object] = {"function": fn}
    if name is not None:
        fn["name"] = name
    if cid is not None:
        call.update(id=cid, type="function")
    if index is not None:
        call["index"] = index
    return call


def _body(first: object, second: object) -> bytes:
    out = b""
    for choice in (0, 1):
        out += _chunk(choice, [_call(first, f"call_a{choice}", "f", '{"a":')])
        out += _chunk(choice, [_call(second, f"call_b{choice}", "g", '{"b":2}')])
        out += _chunk(choice, [_call(first, None, None, "1}")])
    fin = b",".join(b'{"index":%d,"delta":{},"finish_reason":"tool_calls"}' % c for c in (0, 1))
    return out + (b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[' + fin
                  + b"]}\n\ndata: [DONE]\n\n")


@pytest.mark.parametrize("numbering", [(1, 2), (-1, -2), (3, 7)], ids=["from one", "minus one", "gaps"])
def test_every_choices_calls_reach_the_sdk_whole(two_tier, openai_up, numbering):
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    openai_up.script(Raw(body=_body(*numbering), content_type="text/event-stream"))
    with oai(g).chat.completions.stream(model="main", n=2, messages=[{"role": "user", "content": "hi"}]) as s:
        done = s.get_final_completion()
    for c in (0, 1):
        calls = [(t.id, t.function.name, t.function.arguments) for t in done.choices[c].message.tool_calls or []]
        assert calls == [(f"call_a{c}", "f", '{"a":1}'), (f"call_b{c}", "g", '{"b":2}')], c


def test_a_second_choices_calls_in_place_pass_byte_for_byte(two_tier, openai_up):
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    sent = _body(0, 1)
    openai_up.script(Raw(body=sent, content_type="text/event-stream"))
    with oai(g).chat.completions.with_streaming_response.create(
            model="main", n=2, messages=[{"role": "user", "content": "hi"}], stream=True) as r:
        got = r.read()
    named = sent.replace(b'"model": "m"', b'"model":"main"')  # (the name the client asked for: wire/model_name.py)
    assert named.split(b"\n\n")[3:6] == got.split(b"\n\n")[3:6]  # the second choice's chunks
