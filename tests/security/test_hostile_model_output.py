"""What a model (or the upstream serving it) writes, crafted or merely sloppy, against the translations and the
clients behind them. Real HTTP on loopback: the OpenAI-format double sends the raw stream, the official
SDKs read what the gateway makes of it."""

from __future__ import annotations

import json
import threading
from typing import Any

import openai
import pydantic
import pytest

from tests.doubles import Hold, Raw, Reply, ToolCall
from tests.gateway.conftest import ant, oai


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


# ---------------------------------------------------------------- strict tools (an OpenAI client's `strict: true`)

class Edit(pydantic.BaseModel):
    path: str


STRICT = {  # a local model without a grammar, asked for a strict tool: the pieces it writes
    "not JSON": ["not ", "json"],
    "JSON until it is not": ['{"path": "a.py", ', "oops"],
    "JSON, not an object": ["[1, ", "2]"],
    "an object off the schema": ['{"path": ', "5}"],
    "no arguments": [],
}


def _strict_route(two_tier, openai_up, anthropic_up, answer: Any) -> Any:
    """`main`: the local server (which writes `answer`), then the frontier (which honours the schema)."""
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0}},
                 breaker={"failures": 3, "cooldown": 60})
    if answer is not None:
        openai_up.script(answer)
    anthropic_up.script(Reply(tool_calls=[ToolCall("Edit", {"path": "b.py"}, id="toolu_1")]))
    return g


STRICT_KW = {"model": "main", "messages": [{"role": "user", "content": "edit a.py"}],
             "tools": [openai.pydantic_function_tool(Edit)]}


@pytest.mark.parametrize("case", sorted(STRICT))
def test_strict_tool_arguments_the_sdk_cannot_parse_fall_back_to_the_next_target(two_tier, openai_up, anthropic_up,
                                                                                  case):
    """Relayed as the local server wrote them, a strict tool's arguments that are not JSON (or not the schema's
    object) made the openai SDK's `chat.completions.stream` raise in the caller's code (`ValueError: expected
    value`, pydantic's `ValidationError`). They break the contract the client asked for: the upstream failed, and
    the route moves on to the frontier, whose call the client gets, parsed."""
    g = _strict_route(two_tier, openai_up, anthropic_up,
                      Raw(body=tool_stream(*STRICT[case]).replace('"edit"', '"Edit"'), content_type="text/event-stream"))
    with oai(g).chat.completions.stream(**STRICT_KW) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.parsed_arguments == Edit(path="b.py")
    assert len(anthropic_up.requests) == 1  # the frontier answered it


@pytest.mark.parametrize("case", sorted(STRICT))
def test_a_whole_strict_answer_the_sdk_cannot_parse_falls_back_too(two_tier, openai_up, anthropic_up, case):
    body = {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [{
        "index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function", "function": {"name": "Edit", "arguments": "".join(STRICT[case])}}]}}]}
    g = _strict_route(two_tier, openai_up, anthropic_up, Raw(body=json.dumps(body)))
    done = oai(g).chat.completions.parse(**STRICT_KW)
    assert done.choices[0].message.tool_calls[0].function.parsed_arguments == Edit(path="b.py")


def test_strict_arguments_that_parse_stay_with_the_local_server(two_tier, openai_up, anthropic_up):
    g = _strict_route(two_tier, openai_up, anthropic_up, Raw(body=tool_stream('{"pa', 'th": "a', '.py"}').replace(
        '"edit"', '"Edit"'), content_type="text/event-stream"))
    with oai(g).chat.completions.stream(**STRICT_KW) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.tool_calls[0].function.parsed_arguments == Edit(path="a.py")
    assert not anthropic_up.requests


def test_strict_arguments_gone_wrong_mid_answer_end_the_stream_with_an_api_error(two_tier, openai_up, anthropic_up):
    """The client has read the answer's text when the call's arguments go wrong: no other target can take over,
    so the stream ends with the API's error event (`APIError`), not a piece the SDK's parser rejects; and a model
    that cannot honour strict tools is not an outage: its breaker stays closed for other requests."""
    g = _strict_route(two_tier, openai_up, anthropic_up, None)
    bad = Reply(text="I will edit it", tool_calls=[ToolCall("Edit", [1, 2])])  # type: ignore[arg-type]
    for _ in range(4):  # more than `breaker.failures`
        # The call waits until the client has read the text (its 5 events before it paced 50 ms apart instead, a
        # busy machine's gateway read text and call at once, and the route rightly moved on).
        read = threading.Event()
        openai_up.script(Hold(5, read, bad))
        with pytest.raises(openai.APIError) as e:
            with oai(g).chat.completions.stream(**STRICT_KW) as s:
                for _ in s:
                    read.set()
        assert "strict tool 'Edit'" in str(e.value), e.value
    openai_up.script(Reply(text="fine"))
    assert oai(g).chat.completions.create(model="local", messages=[{"role": "user", "content": "hi"}]
                                          ).choices[0].message.content == "fine"


RESPONSES_TOOL = {"type": "function", "name": "Edit", "strict": True, "parameters": {
    "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"], "additionalProperties": False}}


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "parse"])
@pytest.mark.parametrize("case", ["not JSON", "JSON until it is not", "no arguments"])
def test_a_responses_clients_strict_tool_arguments_fall_back_too(two_tier, openai_up, anthropic_up, case, stream):
    """The Responses helpers parse a function tool marked `"strict": true` when the answer completes
    (`json.loads`): arguments that are not JSON raised `JSONDecodeError` in the caller's code. The same contract,
    the same answer: the route moves on to the frontier."""
    g = _strict_route(two_tier, openai_up, anthropic_up,
                      Raw(body=tool_stream(*STRICT[case]).replace('"edit"', '"Edit"'), content_type="text/event-stream")
                      if stream else None)
    if not stream:
        openai_up.script(Raw(body=json.dumps({
            "id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [{
                "index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
                                                                       "tool_calls": [{
                                                                           "id": "c", "type": "function",
                                                                           "function": {"name": "Edit", "arguments":
                                                                                        "".join(STRICT[case])}}]}}]})))
    kw = {"model": "main", "input": "edit a.py", "tools": [RESPONSES_TOOL]}
    if stream:
        with oai(g).responses.stream(**kw) as s:
            for _ in s:
                pass
            done = s.get_final_response()
    else:
        done = oai(g).responses.parse(**kw)
    calls = [o for o in done.output if o.type == "function_call"]
    assert [c.parsed_arguments for c in calls] == [{"path": "b.py"}]
