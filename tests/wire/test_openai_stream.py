"""The OpenAI stream decoder: one chunk per read with the exact bytes of its messages, the same
events however the bytes are split, and an upstream error event in a chunk of its own."""

from __future__ import annotations

import orjson
import pytest

from tierwise.canonical import (
    BlockDelta,
    BlockStart,
    BlockStop,
    MessageDelta,
    MessageStart,
    MessageStop,
    StreamError,
)
from tierwise.errors import UpstreamError
from tierwise.wire.openai_chat import StreamDecoder

BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def data(choices: list, **extra: object) -> bytes:
    return b"data: " + orjson.dumps({**BASE, "choices": choices, **extra}) + b"\n\n"


def delta(d: dict, finish: str | None = None, index: int = 0, **extra: object) -> dict:
    return {"index": index, "delta": d, "finish_reason": finish, **extra}


LP = {"content": [{"token": "x", "logprob": -0.1, "bytes": None, "top_logprobs": []}]}
STREAM = b"".join([
    data([delta({"role": "assistant", "content": ""})]),
    data([delta({"content": "Hel"})]),
    data([delta({"content": "lo"})]),
    data([delta({"content": ""})]),  # empty text: no event
    data([delta({"content": "!"}, index=1)]),  # another choice (n > 1): not the answer's text
    data([delta({"content": " x"}, logprobs=LP)]),
    data([delta({"reasoning_content": "think"})]),
    data([delta({"content": " then"})]),
    data([delta({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{\"a\""}}]})]),
    data([delta({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]})]),
    b": keep-alive\n\n",
    data([delta({}, finish="tool_calls")]),
    data([], usage={"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}),
    b"data: [DONE]\n\n",
])


def decode(pieces: list[bytes]) -> tuple[list, bytes]:
    dec = StreamDecoder()
    events, raw = [], b""
    for p in pieces:
        chunks = dec.feed(p)
        assert len(chunks) <= 1  # no error here: everything one read brought is one chunk
        for c in chunks:
            events += c.events
            raw += c.raw
    assert dec.ended
    return events, raw


def test_events_of_a_whole_stream() -> None:
    events, raw = decode([STREAM])
    assert raw == STREAM.replace(b": keep-alive\n\n", b"")  # every message's exact bytes, comments dropped
    assert isinstance(events[0], MessageStart) and events[0].id == "chatcmpl-1"
    texts = [e.value for e in events if isinstance(e, BlockDelta) and e.delta_type == "text"]
    assert texts == ["Hel", "lo", " x", " then"]
    lp = next(e for e in events if isinstance(e, BlockDelta) and e.value == " x")
    assert lp.logprobs and lp.logprobs[0].token == "x"
    kinds = [type(e).__name__ for e in events if not isinstance(e, BlockDelta)]
    assert kinds == ["MessageStart", "BlockStart", "BlockStop", "BlockStart", "BlockStop", "BlockStart",
                     "BlockStop", "BlockStart", "BlockStop", "MessageDelta", "MessageStop"]
    starts = [e for e in events if isinstance(e, BlockStart)]
    assert [type(s.block).__name__ for s in starts] == ["TextBlock", "ThinkingBlock", "TextBlock", "ToolUseBlock"]
    md = next(e for e in events if isinstance(e, MessageDelta))
    assert md.stop_reason == "tool_use" and md.usage.input_tokens == 5 and md.usage.output_tokens == 7
    assert isinstance(events[-1], MessageStop) and isinstance(events[-3], (BlockStop, MessageDelta))


@pytest.mark.parametrize("size", [1, 7, 64, 333])
def test_any_split_gives_the_same_events_and_bytes(size: int) -> None:
    whole = decode([STREAM])
    assert decode([STREAM[i:i + size] for i in range(0, len(STREAM), size)]) == whole


def test_an_upstream_error_mid_read_comes_after_the_messages_before_it() -> None:
    dec = StreamDecoder()
    good = data([delta({"role": "assistant", "content": "a"})]) + data([delta({"content": "b"})])
    error = b"data: " + orjson.dumps({"error": {"message": "overloaded"}}) + b"\n\n"
    before, failure = dec.feed(good + error)
    assert before.raw == good and [e.value for e in before.events if isinstance(e, BlockDelta)] == ["a", "b"]
    assert failure.raw is None and len(failure.events) == 1 and isinstance(failure.events[0], StreamError)
    assert dec.ended


def test_an_error_before_anything_started_is_raised_for_a_fallback() -> None:
    with pytest.raises(UpstreamError):
        StreamDecoder().feed(b"data: " + orjson.dumps({"error": {"message": "nope"}}) + b"\n\n")


def test_a_choice_that_ends_with_finish_reason_error_is_an_error_not_the_end_of_the_answer() -> None:
    """OpenRouter's mid-stream failure: the chunk (its delta too) is never relayed; the error ends the stream."""
    dec = StreamDecoder()
    good = data([delta({"role": "assistant", "content": "a"})])
    failed = data([delta({"content": " tail"}, "error")], error={"code": 429, "message": "Provider returned error"})
    before, failure = dec.feed(good + failed)
    assert before.raw == good and [e.value for e in before.events if isinstance(e, BlockDelta)] == ["a"]
    (ev,) = failure.events
    assert failure.raw is None and isinstance(ev, StreamError) and ev.error_type == "rate_limit_error"
    assert dec.ended and dec.error is not None and dec.error.status == 429  # as it would be had it come first
    dec = StreamDecoder()
    dec.feed(good)
    (failure,) = dec.feed(data([delta({}, "error")]))  # no error object anywhere: still an error
    assert 'finish_reason "error"' in failure.events[0].message


def test_a_first_chunk_whose_choice_ends_with_finish_reason_error_is_raised() -> None:
    with pytest.raises(UpstreamError, match="disconnected"):
        StreamDecoder().feed(data([delta({}, "error", error={"code": 502, "message": "disconnected"})]))


def test_tool_calls_without_index_stay_separate() -> None:
    """Gemini's OpenAI endpoint sends each parallel call whole and without `index`."""
    def call(cid: str, city: str) -> dict:
        return {"id": cid, "type": "function", "function": {"name": "w", "arguments": f'{{"city":"{city}"}}'}}
    raw = (data([delta({"role": "assistant", "tool_calls": [call("a1", "Paris")]})])
           + data([delta({"tool_calls": [call("b2", "Oslo")]})])
           + data([delta({}, "tool_calls")]) + b"data: [DONE]\n\n")
    d = StreamDecoder()
    events = [e for c in d.feed(raw) for e in c.events]
    starts = [e.block for e in events if isinstance(e, BlockStart)]
    assert [(b.id, b.name) for b in starts] == [("a1", "w"), ("b2", "w")]  # type: ignore[union-attr]
    args = {e.index: e.value for e in events if isinstance(e, BlockDelta)}
    assert args == {0: '{"city":"Paris"}', 1: '{"city":"Oslo"}'}


def test_a_tool_call_without_input_reaches_openai_clients_as_an_empty_object() -> None:
    from tierwise.canonical import Request, ToolUseBlock
    from tierwise.wire.openai_chat import StreamEncoder

    enc = StreamEncoder("m", Request(model="m", messages=[]))
    out = b"".join(enc.encode(e) for e in [
        MessageStart("x", "m"), BlockStart(0, ToolUseBlock("t1", "now", {})), BlockDelta(0, "input_json", ""),
        BlockStop(0), MessageDelta("tool_use"), MessageStop()])
    chunks = [orjson.loads(line[6:]) for line in out.split(b"\n\n") if line.startswith(b"data: {")]
    args = "".join(tc["function"].get("arguments", "") for c in chunks for ch in c["choices"]
                   for tc in ch["delta"].get("tool_calls") or [])
    assert args == "{}"


def test_cache_writes_the_last_event_reports_count_in_the_prompt_tokens() -> None:
    """An Anthropic upstream may give its cache writes only in message_delta: an OpenAI client's
    usage chunk counts them in prompt_tokens, as the Responses stream and whole answers do."""
    from tierwise.canonical import Request, Usage
    from tierwise.wire.openai_chat import StreamEncoder

    enc = StreamEncoder("m", Request(model="m", messages=[], extra={"stream_options": {"include_usage": True}}))
    out = b"".join(enc.encode(e) for e in [
        MessageStart("x", "m", Usage(input_tokens=10)),
        MessageDelta("end_turn", Usage(input_tokens=10, output_tokens=5, cache_write_tokens=100)), MessageStop()])
    chunks = [orjson.loads(line[6:]) for line in out.split(b"\n\n") if line.startswith(b"data: {")]
    assert chunks[-1]["usage"] == {"prompt_tokens": 110, "completion_tokens": 5, "total_tokens": 115}
