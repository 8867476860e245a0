"""review35b: a server that sends tool calls without `index` (Gemini's endpoint) continues the last call with every
piece that names none; finding "the last call" built a tuple of every call's position per piece. A hostile upstream
that opened 4,000 calls and then sent ~80-byte pieces cost 75 us of the event loop a piece (5 us with one call):
3.3 MB of pieces took 1.5 s of CPU, and one chunk can hold thousands of pieces. The last position is now kept as
calls arrive. Asserted without timing: what one piece allocates (the tuple was 8 bytes a call) stays small however
many calls came before, and the pieces still land in the last call."""

from __future__ import annotations

import tracemalloc

import orjson

from tierwise.canonical import BlockDelta, BlockStart
from tierwise.wire.openai_chat.stream import StreamDecoder


def _chunk(calls: list[dict[str, object]]) -> bytes:
    return b"data: " + orjson.dumps({"id": "c", "object": "chat.completion.chunk", "model": "m",
                                     "choices": [{"index": 0, "delta": {"tool_calls": calls}}]}) + b"\n\n"


def _piece_after(calls: int) -> tuple[int, list[object]]:
    """(bytes allocated at the peak while one chunk of 50 index-less pieces is read after `calls` calls, its events)"""
    d = StreamDecoder()
    d.feed(b"".join(_chunk([{"id": f"a{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}])
                    for i in range(calls)))
    piece = _chunk([{"function": {"arguments": " "}}] * 50)
    d.feed(piece)  # (warm)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        events = [e for c in d.feed(piece) for e in c.events]
        return tracemalloc.get_traced_memory()[1] - base, events
    finally:
        tracemalloc.stop()


def test_a_piece_without_index_costs_the_same_after_thousands_of_calls():
    one, _ = _piece_after(1)
    many, events = _piece_after(4000)
    assert many < one + 8_000, (one, many)  # (a tuple of 4,000 positions is 32 KB)
    deltas = [e for e in events if isinstance(e, BlockDelta)]
    assert len(deltas) == 50 and all(e.index == deltas[0].index and e.value == " " for e in deltas)
    assert not [e for e in events if isinstance(e, BlockStart)]  # (each piece continues the last call)
