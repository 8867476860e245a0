"""What the publishing script's prune of a presence index's expired entries costs when a worker planted N of them
(ZADD in batches of 10,000, as its rules allow), against what planting them cost the worker, and one ZADD of all N
in one command (what a worker may send anyway). Redis db 9 of 127.0.0.1:6379, a prefix of its own, deleted after.

    PYTHONPATH=src .venv/bin/python bench/presence_prune_cost.py 100000
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

import redis.asyncio as aredis

from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.errors import NoWorker
from tierwise.dispatch.keys import Keyspace


async def main(n: int) -> None:
    prefix = f"bench-prune-{uuid.uuid4().hex[:8]}:"
    admin = aredis.from_url("redis://127.0.0.1:6379/9")
    idx = Keyspace(prefix, "acme").index("any", "classify")
    try:
        t = time.perf_counter()
        for s in range(0, n, 10_000):
            await admin.zadd(idx, {f"ghost-{i:09d}": 1 for i in range(s, min(n, s + 10_000))})
        planted = time.perf_counter() - t
        async with Dispatcher("redis://127.0.0.1:6379/9", tenant="acme", prefix=prefix) as d:
            t = time.perf_counter()
            try:
                await d.dispatch("classify", "x", timeout=5)
            except NoWorker:
                pass
            pub = time.perf_counter() - t
        left = await admin.zcard(idx)
        await admin.delete(idx)
        t = time.perf_counter()
        await admin.zadd(idx, {f"ghost-{i:09d}": 1 for i in range(n)})
        one = time.perf_counter() - t
        print(f"N={n}: planting in batches {planted:.2f} s; the next publish (NoWorker, the prune inside) "
              f"{pub * 1000:.0f} ms, {left} left; one ZADD of all N {one * 1000:.0f} ms")
    finally:
        await admin.delete(idx)
        await admin.aclose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
