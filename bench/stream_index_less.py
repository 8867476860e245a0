"""CPU of tool-call pieces without `index` (Gemini-style) behind many calls (review35b): a stream opens 1, 1,000 or
4,000 calls, then 20,000 index-less pieces continue the last one; process CPU of StreamDecoder.feed on them.
`PYTHONPATH=<src> .venv/bin/python bench/stream_index_less.py`."""

from __future__ import annotations

import time

import orjson

from tierwise.wire.openai_chat.stream import StreamDecoder


def chunk(tcs, fr=None):
    return b"data: " + orjson.dumps({"id": "c", "object": "chat.completion.chunk", "model": "m",
        "choices": [{"index": 0, "delta": {"tool_calls": tcs}, "finish_reason": fr}]}) + b"\n\n"


for ncalls in (1, 1000, 4000):
    d = StreamDecoder()
    d.feed(chunk([{"id": "a0", "type": "function", "function": {"name": "f", "arguments": "{}"}}]))
    # many whole calls, no index, each a new id
    buf = b"".join(chunk([{"id": f"a{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}]) for i in range(1, ncalls))
    d.feed(buf)
    piece = chunk([{"function": {"arguments": " "}}])  # no index, no id: continues the last call
    data = piece * 20000
    t0 = time.process_time()
    d.feed(data)
    dt = time.process_time() - t0
    print(ncalls, "calls:", len(data), "bytes of pieces,", round(dt, 3), "s CPU;",
          round(dt / 20000 * 1e6, 1), "us/piece")
