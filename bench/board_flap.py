"""Can one worker of a tenant keep its tenant's workers' queue depth off the gateways' board? An honest worker's
Blackboard and a gateway's (tenant acme, both exchanging every 250 ms) run for `seconds`; a hostile writer of the
workers' hash (what a worker's printed ACL allows: HSET, DEL) either deletes it every `every_ms`, or plants 10
fields of 250 KB (past the 2 MiB bound: the gateways' exchange drops the hash) every `every_ms`. Prints the share of
the gateway's exchanges that saw the honest worker's queue depth.

    PYTHONPATH=src .venv/bin/python bench/board_flap.py none|del|plant [every_ms] [seconds]
Redis db 14 on 127.0.0.1:6379 (a prefix of the run's own, deleted after).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid

import redis.asyncio as aredis

from tierwise.dispatch.blackboard import Blackboard, workers_key
from tierwise.dispatch.blackboard_settings import BlackboardConfig
from tierwise.providers.live_stats import LiveStats

URL = "redis://127.0.0.1:6379/14"


async def main(mode: str, every_ms: float, seconds: float) -> None:
    prefix = f"flap-{uuid.uuid4().hex[:8]}:"
    cfg = {"enabled": True, "key_prefix": prefix, "publish_interval_ms": 250, "timeout": 5}
    stats = LiveStats(window=20)
    stats.queue_depth = 3
    worker = Blackboard(BlackboardConfig(**cfg, replica_id="w1"), {"small": stats}, URL, role="worker", tenant="acme")
    gateway = Blackboard(BlackboardConfig(**cfg, replica_id="gw"), {}, URL, tenant="acme")
    hostile = aredis.from_url(URL)
    key = workers_key(prefix, "acme")
    await worker.start()
    await gateway.start()
    seen = total = 0
    last = gateway.exchanges

    async def attack() -> None:
        pad = json.dumps({"models": {"small": {"w": 1, "pad": "x" * (250 << 10)}}})
        while True:
            if mode == "del":
                await hostile.delete(key)
            elif mode == "plant":
                now_ms = int((await hostile.time())[0]) * 1000
                await hostile.hset(key, mapping={f"pad{i}": f"{now_ms} {pad}" for i in range(10)})
            await asyncio.sleep(every_ms / 1000)

    task = asyncio.create_task(attack())
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(0.01)
        if gateway.exchanges != last:
            last = gateway.exchanges
            total += 1
            seen += gateway.value("small", "queue_depth") == 3
    task.cancel()
    await worker.close()
    await gateway.close()
    keys = [k async for k in hostile.scan_iter(match=prefix + "*")]
    if keys:
        await hostile.delete(*keys)
    await hostile.aclose()
    print(f"{mode} every {every_ms:g} ms: the gateway saw the worker's queue depth in {seen} of {total} exchanges "
          f"({seen / max(total, 1):.0%})")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 50, float(sys.argv[3]) if len(sys.argv) > 3 else 10))
