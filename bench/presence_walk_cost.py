"""CPU and wall time of one read of the dashboard's worker list (RedisPresence.workers) with N presence records
(JSON strings, as `tierwise worker` writes them) in a real Redis, under a prefix of this run's own (deleted after).

    PYTHONPATH=src .venv/bin/python bench/presence_walk_cost.py --workers 500 [--redis redis://127.0.0.1:6379/7]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import orjson
import redis

from tierwise.observability.topology import RedisPresence


async def walk(url: str, prefix: str, rounds: int) -> tuple[int, float, float]:
    p = RedisPresence(url, prefix)
    try:
        await p.workers()  # connection made, scripts and pools warm
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(rounds):
            listed = await p.workers()
        return len(listed), (time.process_time() - c0) / rounds, (time.perf_counter() - w0) / rounds
    finally:
        await p.aclose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    a = ap.parse_args()
    r = redis.Redis.from_url(a.redis)
    prefix = f"presence-bench-{uuid.uuid4().hex[:8]}:presence:"
    record = {"capabilities": ["code", "vision"], "locality": "local", "capacity": 4, "in_flight": 1, "status": "online"}
    try:
        for i in range(a.workers):
            r.set(f"{prefix}w{i:04d}", orjson.dumps({**record, "id": f"w{i:04d}"}), ex=600)
        n, cpu, wall = asyncio.run(walk(a.redis, prefix, a.rounds))
        print(f"{a.workers} records: {n} listed; per read: CPU {cpu * 1000:.1f} ms, wall {wall * 1000:.1f} ms "
              f"(mean of {a.rounds})")
    finally:
        for k in r.scan_iter(match=prefix + "*", count=1000):
            r.delete(k)
        r.close()


if __name__ == "__main__":
    main()
