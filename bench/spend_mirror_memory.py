"""What the Redis budget store keeps for the spend mirror (budgets/spend_mirror.py) after its counters have closed.

Each settlement adds its counter's "key slot" to `<prefix>epoch:recent`. A rolling window's counters live minutes (a
`{rolling: 1m}` budget: a new one-second slot per second of traffic); the members were kept 33 days. This settles
`--settlements` requests on distinct slots of counters that expire after `--expire` seconds, waits for them to
expire, lets the gateway look `--looks` times, and prints what the sorted set(s) still hold.

    PYTHONPATH=src .venv/bin/python bench/spend_mirror_memory.py --settlements 100000 --db 13
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from tierwise.budgets.checks import Settlement
from tierwise.budgets.store_redis import RedisStore


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--settlements", type=int, default=100_000)
    ap.add_argument("--expire", type=int, default=2)
    ap.add_argument("--looks", type=int, default=3)
    ap.add_argument("--db", type=int, default=13)
    a = ap.parse_args()
    prefix = f"bench30c:{uuid.uuid4().hex[:8]}:"
    store = RedisStore(f"redis://127.0.0.1:6379/{a.db}", prefix, timeout=30)
    r = store.client
    try:
        t0 = time.perf_counter()
        step = 2000
        for i in range(0, a.settlements, step):
            await asyncio.gather(*(store.settle(f"r{j}", [Settlement(f"{prefix}b:cap", 10_000 + j, 0.0, 0, 0.001, 10,
                                                                    a.expire)], [], now=time.time(), settled_ttl=60)
                                   for j in range(i, min(a.settlements, i + step))))
        settle_s = time.perf_counter() - t0
        recent = prefix + "epoch:recent"
        before = (await r.zcard(recent), await r.memory_usage(recent) or 0)
        await asyncio.sleep(a.expire + 1.5)
        for _ in range(a.looks):
            await store._look(args=[store.ekey, uuid.uuid4().hex, repr(store.mirror.since)])
        keys = [k async for k in r.scan_iter(match=prefix + "epoch*", count=1000)]
        mem = {str(k): await r.memory_usage(k) or 0 for k in keys}
        print(f"settled {a.settlements} on distinct slots in {settle_s:.1f} s; recent then: {before[0]} members, "
              f"{before[1]:,} bytes")
        parts = []
        for k, v in sorted(mem.items()):
            n = f" ({await r.zcard(k)} members)" if k.startswith(recent) else ""
            parts.append(f"{k[len(prefix):]} {v:,} B{n}")
        print(f"after the counters expired and {a.looks} looks: " + ", ".join(parts))
        print(f"bytes per counter-slot kept: {before[1] / max(1, before[0]):.0f}")
    finally:
        if store._watcher is not None:
            store._watcher.cancel()
        keys = [k async for k in r.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await r.delete(*keys)
        await r.aclose()


if __name__ == "__main__":
    asyncio.run(main())
