"""Cost of `cache.redis_signing_key_env` per lookup and per store (session 32, review32a): the Redis answer cache's
`get` of a present entry and `put`, with and without a secret, alternately, on the shared Redis's db 10 under a prefix
of the run's own (deleted after). Entries of `--size` bytes; medians of `--rounds` rounds of `--calls` calls; the
ratio signed / unsigned. Wall time on the client (the Redis round trip included, as a lookup pays it).

    PYTHONPATH=src .venv/bin/python bench/cache_signing_cost.py --size 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid

from tierwise.cache.backends import RedisBackend

URL = "redis://127.0.0.1:6379/10"


async def one(secret: bytes | None, size: int, calls: int) -> tuple[float, float]:
    p = f"tierwise-bench-sign:{uuid.uuid4().hex[:10]}:"
    b = RedisBackend(URL, p, 5.0, 1 << 30, 1 << 20, secret)
    value = os.urandom(size)
    try:
        t0 = time.perf_counter()
        for i in range(calls):
            await b.put(f"k{i % 64}", value, ttl=600, route="main", tenant="t")
        t1 = time.perf_counter()
        for i in range(calls):
            assert await b.get(f"k{i % 64}", route="main", tenant="t") == value
        t2 = time.perf_counter()
    finally:
        keys = [k async for k in b.client.scan_iter(match=p + "*")]
        if keys:
            await b.client.delete(*keys)
        await b.client.aclose()
    return (t1 - t0) / calls * 1e6, (t2 - t1) / calls * 1e6


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    res: dict[str, list[tuple[float, float]]] = {"unsigned": [], "signed": []}
    for k in range(a.rounds):
        for name in (("unsigned", "signed") if k % 2 == 0 else ("signed", "unsigned")):
            res[name].append(await one(b"s" * 32 if name == "signed" else None, a.size, a.calls))
    med = {k: (statistics.median(x for x, _ in v), statistics.median(y for _, y in v)) for k, v in res.items()}
    for k, (p, g) in med.items():
        print(f"{k:9s} put {p:7.1f} us   get {g:7.1f} us   ({a.size} bytes)")
    print(f"ratio signed/unsigned: put {med['signed'][0] / med['unsigned'][0]:.3f}   "
          f"get {med['signed'][1] / med['unsigned'][1]:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
