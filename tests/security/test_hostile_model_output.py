"""What a model (or the upstream serving it) writes, crafted or merely sloppy, against the translations and the
clients behind them. Real HTTP on loopback: the OpenAI-format double sends the raw stream, the official
SDKs read what the gateway makes of it."""

from __future__ import annotations

import json

import pytest

from tests.doubles import Raw
from tests.gateway.conftest import ant


def chunk(delta: dict, finish: str | None = None) -> str:
    return "data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                  "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"


def tool_stream(*pieces: str) -> str:
    """One tool call whose arguments come in these pieces (as servers stream them), then the end."""
    first = {"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                  "function": {"name": "edit", "arguments": ""}}]}
    return (chunk(first) + "".join(chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces)
            + chunk({}, "tool_calls") + "data: [DONE]\n\n")


RAW = '{"path": "a.py", oops'
ARGUMENTS = {  # the pieces; the input the client gets streamed; and not streamed (None: the same)
    "not JSON (a local model without a grammar)": (["not ", "json"], {"_raw_arguments": "not json"}, None),
    "JSON until it is not": (['{"path": "a.py", ', "oops"], {"path": "a.py", "_raw_arguments_": None,
                                                             "_raw_arguments": RAW}, {"_raw_arguments": RAW}),
    "cut short (max_tokens)": (['{"path": "a.', 'py", "text": "ab'], {"path": "a.py", "text": "ab", "_raw_arguments":
                                                                    '{"path": "a.py", "text": "ab'},
                               {"_raw_arguments": '{"path": "a.py", "text": "ab'}),
    "JSON, not an object": (["[1, ", "2]"], {"value": [1, 2]}, None),
    "a JSON object in pieces": (['{"pa', 'th": "a', '.py"}'], {"path": "a.py"}, None),
    "no arguments": ([], {}, None),
}


@pytest.mark.parametrize("case", sorted(ARGUMENTS))
def test_a_streamed_tool_call_reaches_an_anthropic_client_as_an_object(two_tier, openai_up, case):
    """Translated as it came, a tool call whose arguments were not a JSON object made the anthropic SDK's
    `messages.stream` raise in the caller's code (`ValueError: Unable to parse tool parameter JSON from
    model`), and a JSON array became a tool_use `input` that is not an object; not streamed, the same
    answer was `{"_raw_arguments": ...}` / `{"value": ...}`. Valid pieces still go out as they come (the
    conformance suite checks that); what follows them is held, and the block's end closes the object."""
    pieces, expected, whole_expected = ARGUMENTS[case]
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    openai_up.script(Raw(body=tool_stream(*pieces), content_type="text/event-stream"),
                     Raw(body=json.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                                          "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                                              "role": "assistant", "content": None, "tool_calls": [{
                                                  "id": "call_1", "type": "function", "function": {
                                                      "name": "edit", "arguments": "".join(pieces)}}]}}]})))
    kw = {"model": "main", "max_tokens": 100, "messages": [{"role": "user", "content": "edit a.py"}],
          "tools": [{"name": "edit", "input_schema": {"type": "object"}}]}
    with ant(g).messages.stream(**kw) as s:
        for _ in s:
            pass
        streamed = s.get_final_message()
    whole = ant(g).messages.create(**kw)
    assert [b.input for b in streamed.content] == [expected]
    assert [b.input for b in whole.content] == [whole_expected or expected]
    assert streamed.stop_reason == "tool_use"
