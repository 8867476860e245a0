"""What a hostile writer of the workers' board hash (a worker's Redis user may HSET it) can make every gateway
read at every exchange: fields stamped in the future never aged out, and the gateways' script read the whole
hash each time (HGETALL), so a compromised worker could make every exchange of every gateway read millions of
fields. Such a hash is dropped, and such fields are removed."""

from __future__ import annotations

import json
import uuid

import pytest
import redis.asyncio as aredis

from tierwise.dispatch.blackboard import Blackboard
from tierwise.dispatch.blackboard_redis import MAX_FIELDS
from tierwise.dispatch.blackboard_settings import BlackboardConfig
from tierwise.providers.breaker import CircuitBreaker
from tierwise.providers.live_stats import LiveStats

pytestmark = pytest.mark.asyncio
REDIS_URL = "redis://127.0.0.1:6379/12"


async def test_forged_worker_fields_do_not_pile_up_in_every_exchange():
    prefix = f"tierwise-test-board:{uuid.uuid4().hex[:12]}:"
    admin = aredis.from_url(REDIS_URL)
    workers = prefix + "workers"
    own = LiveStats(window=20, breaker=CircuitBreaker())
    gateway = Blackboard(BlackboardConfig(enabled=True, key_prefix=prefix, replica_id="gw-1"), {"frontier": own},
                         REDIS_URL)
    await gateway.start()
    try:
        now_ms = int((await admin.time())[0]) * 1000
        body = json.dumps({"models": {"frontier": {"w": 1, "queue_depth": 3}}})
        future = f"{now_ms + 10**9} {body}"
        await admin.hset(workers, "forged", future)  # stamped in the future: never "older than ttl"
        await admin.hset(workers, "huge", f"{now_ms} " + "x" * (300 << 10))
        await admin.hset(workers, "honest", f"{now_ms} {body}")
        await gateway.exchange()
        assert sorted(k.decode() for k in await admin.hkeys(workers)) == ["honest"]
        pipe = admin.pipeline(transaction=False)
        for i in range(MAX_FIELDS + 10):
            pipe.hset(workers, f"w{i}", f"{now_ms} {body}")
        await pipe.execute()
        await gateway.exchange()
        assert await admin.hlen(workers) == 0  # dropped; live workers publish again at their next heartbeat
    finally:
        await gateway.close()
        keys = [k async for k in admin.scan_iter(match=prefix + "*")]
        if keys:
            await admin.delete(*keys)
        await admin.aclose()
