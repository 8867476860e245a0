"""What the cache mark and web search finders (`pricing.cache_mark`, `pricing.searches_allowed`) cost one admission
at hostile shapes near the 32 MiB body limit, beside what parsing the body costs (orjson.loads), for the forwarded
body and for the re-encoded one (a system turn mid-conversation: the canonical request is read, server tools' and
opaque blocks' raw JSON included since review30c).

    PYTHONPATH=src .venv/bin/python bench/cache_mark_hostile.py
"""

from __future__ import annotations

import time

import orjson

from tierwise.pricing import cache_mark, searches_allowed
from tierwise.wire.anthropic_messages import decode_request

MID = [{"role": "assistant", "content": "a"}, {"role": "system", "content": "s"}, {"role": "user", "content": "q"}]


def deep(n: int) -> dict:
    """A search_result block whose content nests 4 lists deep, each level `n` wide at the bottom."""
    leaf = [{"type": "text", "text": "x"}] * n
    return {"type": "search_result", "source": "s", "title": "t", "content": [
        {"type": "text", "text": "x", "content": [{"type": "text", "text": "x", "content": leaf}]}]}


SHAPES = {
    "1M empty text blocks": lambda: [{"role": "user", "content": [{"type": "text", "text": ""}] * 1_000_000}],
    "300k documents": lambda: [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}}] * 300_000}],
    "search result, 4 deep, 600k leaves": lambda: [{"role": "user", "content": [deep(600_000)]}],
    "20k tool results x 20 blocks": lambda: [{"role": "user", "content": [{"type": "text", "text": "go"}]}, *(
        m for i in range(20_000) for m in (
            {"role": "assistant", "content": [{"type": "tool_use", "id": f"t{i}", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"t{i}",
                                          "content": [{"type": "text", "text": "r"}] * 20}]}))],
}


def best(f, n: int = 3) -> float:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return min(out)


def main() -> None:
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}] * 10_000
    for name, make in SHAPES.items():
        for mid in (False, True):
            msgs = make()
            if mid:
                msgs = [*msgs, *MID]
            raw = orjson.dumps({"model": "m", "max_tokens": 10, "messages": msgs, "tools": tools})
            body = orjson.loads(raw)
            req = decode_request(body, {})
            parse = best(lambda r=raw: orjson.loads(r))
            mark = best(lambda q=req: cache_mark(q))
            search = best(lambda q=req: searches_allowed(q))
            kind = "re-encoded" if req.source_body is None else "forwarded"
            print(f"{name:38s} {kind:10s} {len(raw) / 2**20:5.1f} MiB: parse {parse * 1e3:6.1f} ms, cache_mark "
                  f"{mark * 1e3:6.1f} ms, searches_allowed {search * 1e3:5.2f} ms")


if __name__ == "__main__":
    main()
