"""wire4: what a hostile OpenAI-format upstream can make of a tool call's argument pieces, translated for an
Anthropic client (the stream encoder checks that the pieces begin a JSON object, piece by piece).

A number streamed in many pieces was matched whole again after every piece, and deep nesting copied the open
containers at every piece: quadratic on the event loop (800 KB of digits, 95 s). And a tool call waiting behind
an unfinished one kept its pieces until the answer's end, bounded only by the whole stream's size."""

from __future__ import annotations

import anthropic
import pytest

from tests.doubles.script import Raw
from tests.gateway.conftest import ant
from tests.gateway.test_reused_tool_index import _chunk, _tc
from tests.harness import two_tier_config
from tierwise.wire.json_prefix import MAX_DEPTH, MAX_TOKEN, RAW_KEY


def _stream(pieces: list[str]) -> str:
    return "".join([_chunk({"role": "assistant"}), _chunk(_tc(0, "call_a", "f", pieces[0])),
                    *(_chunk(_tc(0, None, None, p)) for p in pieces[1:]),
                    _chunk({}, "tool_calls"), "data: [DONE]\n\n"])


def _inputs(g, stream: str, openai_up) -> list:
    openai_up.script(Raw(body=stream, content_type="text/event-stream"))
    tools = [{"name": "f", "description": "f", "input_schema": {"type": "object"}}]
    with ant(g).messages.stream(model="main", max_tokens=100, tools=tools,
                                messages=[{"role": "user", "content": "q"}]) as s:
        message = s.get_final_message()
    return [b.input for b in message.content if b.type == "tool_use"]


def _local(two_tier):
    return two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})


def test_a_number_streamed_in_endless_pieces_ends_as_raw_arguments(two_tier, openai_up):
    pieces = ['{"n": 1', *("1111111111" for _ in range(MAX_TOKEN // 10 + 50)), "}"]
    (got,) = _inputs(_local(two_tier), _stream(pieces), openai_up)
    assert got[RAW_KEY] == "".join(pieces)  # the whole text kept; the number cut where the check stopped
    assert len(str(got["n"])) <= MAX_TOKEN


def test_arguments_nested_past_the_depth_end_as_raw_arguments(two_tier, openai_up):
    deep = MAX_DEPTH + 40
    pieces = ['{"a": ', *("[" for _ in range(deep)), *("]" for _ in range(deep)), "}"]
    (got,) = _inputs(_local(two_tier), _stream(pieces), openai_up)
    assert got[RAW_KEY] == "".join(pieces)


def test_ordinary_numbers_and_nesting_are_untouched(two_tier, openai_up):
    pieces = ['{"n": 12', "345.5e3", ', "a": [[', '{"b": [1, 2]}]], "t": tr', "ue}"]
    (got,) = _inputs(_local(two_tier), _stream(pieces), openai_up)
    assert got == {"n": 12345.5e3, "a": [[{"b": [1, 2]}]], "t": True}


def _small_events(gateway, openai_up, anthropic_up):
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    cfg["providers"]["localsrv"]["max_stream_event_bytes"] = 4096
    return gateway(cfg)


def test_pieces_held_behind_an_unfinished_call_are_bounded(gateway, openai_up, anthropic_up):
    """Call 0's arguments never end; call 1's pieces wait behind it. Past the provider's
    `max_stream_event_bytes` of waiting pieces the stream ends in an upstream error (they were kept to the
    answer's end, up to the whole stream's 64 MB)."""
    g = _small_events(gateway, openai_up, anthropic_up)
    stream = "".join([_chunk({"role": "assistant"}), _chunk(_tc(0, "call_a", "f", '{"path": ')),
                      _chunk(_tc(1, "call_b", "f", '{"x": "')),
                      *(_chunk(_tc(1, None, None, "y" * 100)) for _ in range(50)),
                      _chunk(_tc(1, None, None, '"}')), _chunk(_tc(0, None, None, '"a.py"}')),
                      _chunk({}, "tool_calls"), "data: [DONE]\n\n"])
    with pytest.raises(anthropic.APIError) as e:
        _inputs(g, stream, openai_up)
    assert "tool calls behind an unfinished one" in str(e.value)


def test_a_few_pieces_held_behind_an_unfinished_call_still_arrive(gateway, openai_up, anthropic_up):
    g = _small_events(gateway, openai_up, anthropic_up)
    stream = "".join([_chunk({"role": "assistant"}), _chunk(_tc(0, "call_a", "f", '{"path": ')),
                      _chunk(_tc(1, "call_b", "f", '{"x": "')),
                      *(_chunk(_tc(1, None, None, "y" * 100)) for _ in range(10)),
                      _chunk(_tc(1, None, None, '"}')), _chunk(_tc(0, None, None, '"a.py"}')),
                      _chunk({}, "tool_calls"), "data: [DONE]\n\n"])
    assert _inputs(g, stream, openai_up) == [{"path": "a.py"}, {"x": "y" * 1000}]


def test_an_answer_of_endless_tool_calls_is_an_upstream_error(two_tier, openai_up):
    """Each new call costs a few hundred bytes of the decoder's state from ~40 bytes of the upstream's: an
    answer's calls are bounded (MAX_CALLS)."""
    from tierwise.wire.openai_chat.stream import MAX_CALLS

    calls = [{"index": i, "id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
             for i in range(MAX_CALLS + 1)]
    stream = "".join([_chunk({"role": "assistant"}),
                      *(_chunk({"tool_calls": calls[i:i + 200]}) for i in range(0, len(calls), 200)),
                      _chunk({}, "tool_calls"), "data: [DONE]\n\n"])
    with pytest.raises(anthropic.APIError) as e:
        _inputs(_local(two_tier), stream, openai_up)
    assert f"more than {MAX_CALLS} tool calls" in str(e.value)


def test_a_stream_of_keys_past_the_checked_characters_ends_as_raw_arguments(two_tier, openai_up):
    """review27b: the check takes a Python step per character outside strings, whatever the pieces (`"k":1,`
    repeated: ~400 ns a byte, against ~9 for the rest of the translation), so a 64 MiB stream of such arguments
    held the event loop ~27 s; a bound per call would not do (an upstream spreads them over calls). One budget
    per stream: here two calls of 1.2 MB each, the second past it."""
    MAX_CHECKED = 2 << 20  # (wire/json_prefix.py; written out so the test runs against the code before it)

    body = ['"k":1,' * 10_000] * (MAX_CHECKED * 6 // 10 // 60_000)

    def call(i: int, cid: str) -> list[str]:
        return [_chunk(_tc(i, cid, "f", "{")), *(_chunk(_tc(i, None, None, p)) for p in body),
                _chunk(_tc(i, None, None, '"z": 0}'))]

    stream = "".join([_chunk({"role": "assistant"}), *call(0, "call_a"), *call(1, "call_b"),
                      _chunk({}, "tool_calls"), "data: [DONE]\n\n"])
    first, second = _inputs(_local(two_tier), stream, openai_up)
    assert first == {"k": 1, "z": 0}
    assert RAW_KEY in second and second[RAW_KEY].endswith('"z": 0}'), str(second)[:200]
