"""A local server that numbers every streamed tool call 0 (Ollama's OpenAI-compatible endpoint for many models:
ollama/ollama#15457, #15497), translated for Anthropic and Responses clients.

Each call comes with its own id at `index` 0. The decoder read every delta at index 0 as the first call's: an
Anthropic client (Claude Code on a local model) got the first call only, the others dropped; a Responses client
got one call whose arguments were the calls' texts end to end (`{"path": "a"}{"path": "b"}`). A new id at an
index a call already has is another call now. (An OpenAI client is relayed the server's own chunks as sent.)"""

from __future__ import annotations

import json

import pytest

from tests.doubles.script import Raw
from tests.gateway.conftest import ant, oai


def _chunk(delta: dict, finish: str | None = None) -> str:
    return "data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                  "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"


def _call(call_id: str | None, name: str | None, args: str) -> dict:
    tc: dict = {"index": 0, "function": {"arguments": args}}
    if call_id is not None:
        tc.update(id=call_id, type="function")
        tc["function"]["name"] = name
    return {"tool_calls": [tc]}


# Three calls at index 0; the first and second have their arguments in two pieces (the second piece without an id).
STREAM = "".join([
    _chunk({"role": "assistant", "content": None}),
    _chunk(_call("call_a", "write_file", '{"path": ')), _chunk(_call(None, None, '"a.py"}')),
    _chunk(_call("call_b", "write_file", '{"path": ')), _chunk(_call(None, None, '"b.py"}')),
    _chunk(_call("call_c", "read_file", '{"path": "c.py"}')),
    _chunk({}, "tool_calls"), "data: [DONE]\n\n"])
EXPECTED = [("call_a", "write_file", {"path": "a.py"}), ("call_b", "write_file", {"path": "b.py"}),
            ("call_c", "read_file", {"path": "c.py"})]
NAMES = ("write_file", "read_file")


def _gateway(two_tier):
    return two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})


def test_calls_all_numbered_0_reach_an_anthropic_client_as_separate_calls(two_tier, openai_up):
    g = _gateway(two_tier)
    openai_up.script(Raw(body=STREAM, content_type="text/event-stream"))
    tools = [{"name": n, "description": n, "input_schema": {"type": "object"}} for n in NAMES]
    with ant(g).messages.stream(model="main", max_tokens=100, tools=tools,
                                messages=[{"role": "user", "content": "write a.py and b.py, read c.py"}]) as s:
        message = s.get_final_message()
    assert [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"] == EXPECTED
    assert message.stop_reason == "tool_use"


def test_calls_all_numbered_0_reach_a_responses_client_as_separate_calls(two_tier, openai_up):
    g = _gateway(two_tier)
    openai_up.script(Raw(body=STREAM, content_type="text/event-stream"))
    tools = [{"type": "function", "name": n, "parameters": {"type": "object"}} for n in NAMES]
    with oai(g).responses.stream(model="main", input="write a.py and b.py, read c.py", tools=tools) as s:
        response = s.get_final_response()
    calls = [(o.call_id, o.name, json.loads(o.arguments)) for o in response.output if o.type == "function_call"]
    assert calls == EXPECTED


def test_a_call_in_pieces_at_its_own_index_is_still_one_call(two_tier, openai_up):
    """Ids repeated on every piece of one call (some servers do) do not split it."""
    g = _gateway(two_tier)
    stream = "".join([_chunk({"role": "assistant"}), _chunk(_call("call_a", "write_file", '{"path"')),
                      _chunk(_call("call_a", "write_file", ': "a.py"}')), _chunk({}, "tool_calls"), "data: [DONE]\n\n"])
    openai_up.script(Raw(body=stream, content_type="text/event-stream"))
    tools = [{"name": n, "description": n, "input_schema": {"type": "object"}} for n in NAMES]
    with ant(g).messages.stream(model="main", max_tokens=100, tools=tools,
                                messages=[{"role": "user", "content": "q"}]) as s:
        message = s.get_final_message()
    assert [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"] == [EXPECTED[0]]


def _ant_calls(g, stream: str, openai_up) -> list:
    openai_up.script(Raw(body=stream, content_type="text/event-stream"))
    tools = [{"name": n, "description": n, "input_schema": {"type": "object"}} for n in NAMES]
    with ant(g).messages.stream(model="main", max_tokens=100, tools=tools,
                                messages=[{"role": "user", "content": "q"}]) as s:
        message = s.get_final_message()
    return [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]


def test_a_call_whose_id_changes_between_its_pieces_is_still_one_call(two_tier, openai_up):
    """Some servers give the later pieces of one call another id, without its name (Poolside's API,
    poolsideai/pool#9; mlx-openai-server before its PR #216): a new id without a name continues the call
    at that index; only a new id with a name (Ollama's calls, each whole) starts another one."""
    g = _gateway(two_tier)
    piece = {"tool_calls": [{"index": 0, "id": "call_x2", "function": {"arguments": ': "a.py"}'}}]}
    stream = "".join([_chunk({"role": "assistant"}), _chunk(_call("call_x1", "write_file", '{"path"')),
                      _chunk(piece), _chunk({}, "tool_calls"), "data: [DONE]\n\n"])
    assert _ant_calls(g, stream, openai_up) == [("call_x1", "write_file", {"path": "a.py"})]


def test_parallel_calls_with_their_own_indices_and_ids_on_the_first_piece_only(two_tier, openai_up):
    """OpenAI's and vLLM's shape: index 0, 1, each id and name on its first piece only, pieces interleaved."""
    g = _gateway(two_tier)

    def tc(i: int, call_id: str | None, name: str | None, args: str) -> dict:
        d: dict = {"index": i, "function": {"arguments": args}}
        if call_id:
            d.update(id=call_id, type="function")
            d["function"]["name"] = name
        return {"tool_calls": [d]}

    stream = "".join([_chunk({"role": "assistant"}), _chunk(tc(0, "call_a", "write_file", '{"path": ')),
                      _chunk(tc(0, None, None, '"a.py"}')), _chunk(tc(1, "call_b", "read_file", '{"path"')),
                      _chunk(tc(1, None, None, ': "c.py"}')), _chunk({}, "tool_calls"), "data: [DONE]\n\n"])
    assert _ant_calls(g, stream, openai_up) == [("call_a", "write_file", {"path": "a.py"}),
                                                ("call_b", "read_file", {"path": "c.py"})]


def _tc(i: int, call_id: str | None, name: str | None, args: str | None) -> dict:
    fn: dict = {}
    if name is not None:
        fn["name"] = name
    if args is not None:
        fn["arguments"] = args
    d: dict = {"index": i, "function": fn}
    if call_id:
        d.update(id=call_id, type="function")
    return {"tool_calls": [d]}


# Two calls whose pieces arrive interleaved (0, 1, 0, 1), each name streamed in two pieces before its arguments.
INTERLEAVED = "".join([
    _chunk({"role": "assistant"}),
    _chunk(_tc(0, "call_a", "write_", None)), _chunk(_tc(0, None, "file", None)),
    _chunk(_tc(1, "call_b", "read", None)), _chunk(_tc(1, None, "_file", None)),
    _chunk(_tc(0, None, None, '{"path": ')), _chunk(_tc(1, None, None, '{"path": ')),
    _chunk(_tc(0, None, None, '"a.py"}')), _chunk(_tc(1, None, None, '"c.py"}')),
    _chunk({}, "tool_calls"), "data: [DONE]\n\n"])
INTERLEAVED_CALLS = [("call_a", "write_file", {"path": "a.py"}), ("call_b", "read_file", {"path": "c.py"})]


def test_interleaved_calls_and_names_in_pieces_reach_an_anthropic_client_whole(two_tier, openai_up):
    """OpenAI's deltas name their call by `index`, so a server may interleave two calls' pieces and stream a
    name in pieces. Translated, the first call's block ended when the second began and its later pieces were
    lost (`write_file({})`), and each name was its first piece (`write_`)."""
    assert _ant_calls(_gateway(two_tier), INTERLEAVED, openai_up) == INTERLEAVED_CALLS


def test_interleaved_calls_and_names_in_pieces_reach_a_responses_client_whole(two_tier, openai_up):
    g = _gateway(two_tier)
    openai_up.script(Raw(body=INTERLEAVED, content_type="text/event-stream"))
    tools = [{"type": "function", "name": n, "parameters": {"type": "object"}} for n in NAMES]
    with oai(g).responses.stream(model="main", input="q", tools=tools) as s:
        response = s.get_final_response()
    calls = [(o.call_id, o.name, json.loads(o.arguments)) for o in response.output if o.type == "function_call"]
    assert calls == INTERLEAVED_CALLS


def test_calls_without_index_each_whole_stay_separate(two_tier, openai_up):
    """Gemini's OpenAI endpoint sends each call whole and without `index`: three ids, three calls."""
    g = _gateway(two_tier)

    def whole(call_id: str, name: str, args: str) -> dict:
        return {"tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}]}

    stream = "".join([_chunk({"role": "assistant"}), _chunk(whole("g1", "write_file", '{"path": "a.py"}')),
                      _chunk(whole("g2", "write_file", '{"path": "b.py"}')),
                      _chunk(whole("g3", "read_file", '{"path": "c.py"}')), _chunk({}, "tool_calls"),
                      "data: [DONE]\n\n"])
    assert _ant_calls(g, stream, openai_up) == [("g1", "write_file", {"path": "a.py"}),
                                                ("g2", "write_file", {"path": "b.py"}),
                                                ("g3", "read_file", {"path": "c.py"})]


def test_a_tool_name_streamed_without_end_is_an_upstream_error(two_tier, openai_up):
    """review26c: a waiting call's name is joined from its pieces; an upstream that streamed a name in endless
    pieces had it joined again at every piece (quadratic: 28 s of the event loop, every other request stalled,
    for 14 MB) and handed the client a name of any length. Names are at most 64 (OpenAI) or 128 (Anthropic)
    characters: past 1,024 the stream ends in an upstream error."""
    import anthropic

    from tierwise.wire.openai_chat.stream import MAX_TOOL_NAME

    stream = "".join([_chunk({"role": "assistant"}), _chunk(_tc(0, "call_a", "write_file", '{"path": ')),
                      _chunk(_tc(1, "call_b", "r", None)),
                      *(_chunk(_tc(1, None, "n" * 100, None)) for _ in range(MAX_TOOL_NAME // 100 + 1)),
                      _chunk(_tc(1, None, None, "{}")), _chunk(_tc(0, None, None, '"a.py"}')),
                      _chunk({}, "tool_calls"), "data: [DONE]\n\n"])
    with pytest.raises(anthropic.APIError) as e:
        _ant_calls(_gateway(two_tier), stream, openai_up)
    assert "tool name longer than" in str(e.value)
