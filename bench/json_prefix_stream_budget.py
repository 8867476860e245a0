"""CPU of the OpenAI stream decoder's argument check on hostile tool-call arguments (review27b, session 27).

    PYTHONPATH=src python bench/json_prefix_stream_budget.py 64            # this tree, a 64 MB stream
    PYTHONPATH=/tmp/base/src python bench/json_prefix_stream_budget.py 64  # another

`"k":1,` repeated in 1,000-character pieces while a second call waits (so the open call's pieces are checked):
one Python step per character, ~400 ns a byte before the per-stream budget (json_prefix.MAX_CHECKED).
"""

from __future__ import annotations

import sys
import time

import orjson

from tierwise.wire.openai_chat.stream import StreamDecoder


def ev(d: dict) -> bytes:
    return b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": d}]}) + b"\n\n"


def tc(i: int, **f: str) -> bytes:
    return ev({"tool_calls": [{"index": i, **({"id": f"c{i}"} if "name" in f else {}), "type": "function",
                               "function": f}]})


def run(name: str, head: str, piece: str, mb: float) -> None:
    d = StreamDecoder()
    d.feed(tc(0, name="a", arguments=head))
    d.feed(tc(1, name="b", arguments="{"))
    chunk = tc(0, arguments=piece) * 64
    n = int(mb * 1e6 / len(chunk)) + 1
    t = time.process_time()
    for _ in range(n):
        d.feed(chunk)
    dt = time.process_time() - t
    print(f"{name:<24} {n * len(chunk) / 1e6:5.1f} MB of SSE: {dt:6.2f} s CPU ({dt / (n * len(chunk)) * 1e9:4.0f} ns/B)")


mb = float(sys.argv[1]) if len(sys.argv) > 1 else 8
run("keys, a call waiting", "{", '"k":1,' * 166, mb)
run("string, a call waiting", '{"a":"', "x" * 1000, mb)
