"""What naming the client's model in pass-through answers costs (wire/model_name.py), against what the
pass-through already pays per event and per body (orjson.loads of the same bytes, which the decoder
does). CPU time of interleaved rounds in one process; ratios are what to read on a shared machine.

    PYTHONPATH=src .venv/bin/python bench/model_name_rewrite.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

from tierwise.wire import model_name as mn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stub_upstream  # noqa: E402

CHUNK = (b'data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1,"model":"/home/u/models/'
         b'qwen2.5-7b-q4_k_m.gguf","choices":[{"index":0,"delta":{"content":" word"},"finish_reason":null}]}\n\n')
A_DELTA = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
           b'"text":" word"}}\n\n')
BODY = orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "/home/u/x.gguf",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "x" * 2000},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 10, "completion_tokens": 400, "total_tokens": 410}})
OPENAI_EVENTS, ANTHROPIC_EVENTS = mn.renamer("openai", "main"), mn.renamer("anthropic", "main")
# A whole 50-event stream in one chunk, as bench/stub_upstream.py sends it (an upstream that answers at once).
OPENAI_STREAM, ANTHROPIC_STREAM = b"".join(stub_upstream._oai_stream()), b"".join(stub_upstream._ant_stream())
CASES = {
    "openai stream event: rename": lambda: OPENAI_EVENTS(CHUNK),
    "openai stream event: orjson.loads (decoder, already paid)": lambda: orjson.loads(CHUNK[6:-2]),
    "anthropic delta event: rename (no message_start)": lambda: ANTHROPIC_EVENTS(A_DELTA),
    "openai 50-event stream in one chunk: rename": lambda: OPENAI_EVENTS(OPENAI_STREAM),
    "anthropic 50-event stream in one chunk: rename": lambda: ANTHROPIC_EVENTS(ANTHROPIC_STREAM),
    "2 KB body: rename": lambda: mn.body(BODY, "main"),
    "2 KB body: orjson.loads (decoder, already paid)": lambda: orjson.loads(BODY),
}


def main(rounds: int = 7, n: int = 20_000) -> None:
    best = {k: float("inf") for k in CASES}
    for _ in range(rounds):  # interleaved: each round runs every case once
        for k, f in CASES.items():
            t0 = time.process_time()
            for _ in range(n):
                f()
            best[k] = min(best[k], (time.process_time() - t0) / n * 1e6)
    for k, us in best.items():
        print(f"{k}: {us:.2f} µs CPU")
    print(f"ratio openai event rename / loads: {best['openai stream event: rename'] / best['openai stream event: orjson.loads (decoder, already paid)']:.2f}")
    print(f"ratio body rename / loads: {best['2 KB body: rename'] / best['2 KB body: orjson.loads (decoder, already paid)']:.2f}")


if __name__ == "__main__":
    main()
