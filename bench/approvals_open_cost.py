"""The approval store's work for one gated request: `open` (the route's bound, and the key's share where the
tree has one) then `decide`, with `--waiting` records of `--keys` gateway keys already pending on the route.

  --store memory: bytecodes (a count, so the machine's load does not move it);
  --store redis: wall time per open+decide on a Redis (db 15 by default), sequential, best of `--rounds`.

A/B: run it once per tree (a tree whose `open` takes no share is called without one).

    PYTHONPATH=src .venv/bin/python bench/approvals_open_cost.py --store memory
    PYTHONPATH=/tmp/base/src .venv/bin/python bench/approvals_open_cost.py --store memory
    PYTHONPATH=src .venv/bin/python bench/approvals_open_cost.py --store redis
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import time
import uuid
from typing import Any

from bytecodes import counted  # bench/bytecodes.py (the script's folder is on sys.path)


def _records(n: int, keys: int, waiting: int) -> list[Any]:
    from tierwise.dispatch.approval_store import ApprovalRecord

    now = time.time()
    return [ApprovalRecord(id=f"apr_{uuid.uuid4().hex}", kind="route", subject="main", created=now,
                           deadline=now + 600, key=f"key-{i % keys}", preview="x" * 200)
            for i in range(n + waiting)]


def _run(coro: Any) -> Any:
    """A coroutine that never suspends (the memory store), run without an event loop."""
    try:
        coro.send(None)
    except StopIteration as e:
        return e.value
    raise RuntimeError("suspended")


def memory(a: argparse.Namespace, shared: bool) -> None:
    from tierwise.dispatch.approval_store import MemoryApprovalStore

    s = MemoryApprovalStore()
    recs = _records(a.requests, a.keys, a.waiting)
    bound = (a.max_pending,) if not shared else (a.max_pending, a.max_pending)
    for r in recs[:a.waiting]:
        _run(s.open(r, *bound))
    with counted() as n:
        for r in recs[a.waiting:]:
            _run(s.open(r, *bound))
            _run(s.decide(r.id, "approved", "bench", None))
    ops = n[0]
    print(f"bytecodes per open+decide, memory store ({a.waiting} waiting, {a.keys} keys, per-key share: {shared}): "
          f"{ops / a.requests:,.1f}")


async def redis_store(a: argparse.Namespace, shared: bool) -> None:
    from tierwise.dispatch.approval_store import RedisApprovalStore

    prefix = f"tierwise-bench:{uuid.uuid4().hex[:8]}:"
    s = RedisApprovalStore(a.redis_url, prefix)
    bound = (a.max_pending,) if not shared else (a.max_pending, a.max_pending)
    recs = _records(a.requests * a.rounds, a.keys, a.waiting)
    try:
        for r in recs[:a.waiting]:
            await s.open(r, *bound)
        best = float("inf")
        for k in range(a.rounds):
            batch = recs[a.waiting + k * a.requests: a.waiting + (k + 1) * a.requests]
            t0 = time.perf_counter()
            for r in batch:
                await s.open(r, *bound)
                await s.decide(r.id, "approved", "bench", None)
            best = min(best, (time.perf_counter() - t0) / a.requests)
        print(f"µs per open+decide, Redis store ({a.waiting} waiting, {a.keys} keys, per-key share: {shared}), "
              f"best of {a.rounds}: {best * 1e6:,.1f}")
    finally:
        keys = [k async for k in s.client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await s.client.delete(*keys)
        await s.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", choices=["memory", "redis"], default="memory")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keys", type=int, default=4)
    ap.add_argument("--waiting", type=int, default=8, help="records already pending on the route")
    ap.add_argument("--max-pending", type=int, default=20)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    a = ap.parse_args()
    from tierwise.dispatch.approval_store import MemoryApprovalStore

    shared = "per_key" in inspect.signature(MemoryApprovalStore.open).parameters
    if a.store == "memory":
        memory(a, shared)
    else:
        asyncio.run(redis_store(a, shared))


if __name__ == "__main__":
    main()
