"""The exact cache's own cost per request, in one process: the route target called directly
(`off`) against the same target behind the cache on a miss (key, lookup, encode, store) and on a
hit (key, lookup, decode), memory backend. A/B rounds interleaved; medians of the rounds.

The request is a decoded OpenAI body (system prompt, 6 turns, 2 tools, ~2 KB) and the answer a
decoded OpenAI response with its raw bytes, as the gateway sees them.

    nice -n 5 python bench/cache_micro.py --rounds 5 -n 5000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tierwise.cache.answer_cache import AnswerCache  # noqa: E402
from tierwise.cache.settings import CacheConfig  # noqa: E402
from tierwise.policies.base import Context  # noqa: E402
from tierwise.trace import Trace  # noqa: E402
from tierwise.wire import openai_chat  # noqa: E402

BODY = {"model": "main", "temperature": 0, "messages": [
    {"role": "system", "content": "You are a helpful assistant. " * 10},
    *[m for i in range(3) for m in ({"role": "user", "content": f"Question {i}: " + "tell me more. " * 20},
                                    {"role": "assistant", "content": "Here is more. " * 20})],
    {"role": "user", "content": "And finally?"}],
    "tools": [{"type": "function", "function": {"name": f"t{i}", "description": "a tool",
                                                "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}}
              for i in range(2)]}
ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "The answer is 42. " * 10}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 400, "completion_tokens": 60, "total_tokens": 460}}


class Inner:
    name = "m"

    def __init__(self) -> None:
        raw = orjson.dumps(ANSWER)
        self.resp = openai_chat.decode_response(ANSWER, raw)

    async def complete(self, req, ctx):  # type: ignore[no-untyped-def]
        return self.resp


async def run(kind: str, n: int) -> float:
    cache = AnswerCache(CacheConfig(enabled=True, all_routes=True))
    inner = Inner()
    req = openai_chat.decode_request(BODY, {})
    if kind == "hit":  # stored once, then every request is a hit
        ctx = Context(Trace("r", "main"), lambda name: inner)
        await cache.wrap(inner, ctx, "", req, "openai").complete(req, ctx)
    t0 = time.perf_counter()
    for i in range(n):
        ctx = Context(Trace("r", "main"), lambda name: inner)
        if kind == "off":
            await inner.complete(req, ctx)
            continue
        if kind == "miss":  # a new last question each time: a new key
            req.messages[-1].content[0].text = f"And finally? {i}"
        target = cache.wrap(inner, ctx, "", req, "openai")
        await target.complete(req, ctx)
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-n", type=int, default=5000)
    a = ap.parse_args()
    res: dict[str, list[float]] = {"off": [], "miss": [], "hit": []}
    for r in range(a.rounds):
        for kind in (list(res) if r % 2 == 0 else list(reversed(res))):
            res[kind].append(asyncio.run(run(kind, a.n)))
    off = statistics.median(res["off"])
    print(f"{a.rounds} rounds x {a.n} requests (medians, µs per request)")
    for k, v in res.items():
        print(f"  {k:5s} {statistics.median(v):8.1f} µs   added vs off {statistics.median(v) - off:8.1f} µs")


if __name__ == "__main__":
    main()
