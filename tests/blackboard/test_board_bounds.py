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


async def test_a_workers_hash_of_many_megabytes_is_not_read_at_each_exchange(own_redis):
    """Under 4,000 fields of under 256 KB each, fields stamped now: the script read the whole hash (HGETALL) into
    Lua and sent every field to every gateway at every exchange (1,000 such fields: 3 s of Redis's CPU and 409 MB
    an exchange, bench/RESULTS.md session 35, obs6). The workers' hash past MAX_WORKERS_BYTES is dropped unread.
    A redis-server of the test's own: its byte counter is this test's alone."""
    import redis as sync_redis

    server = own_redis(appendonly=False)
    prefix = "board-bytes:"
    admin = aredis.from_url(server.url)
    counters = sync_redis.Redis.from_url(server.url)
    workers = prefix + "workers"
    gateway = Blackboard(BlackboardConfig(enabled=True, key_prefix=prefix, replica_id="gw-1", timeout=30),
                         {"frontier": LiveStats(window=20, breaker=CircuitBreaker())}, server.url)
    await gateway.start()
    try:
        now_ms = int((await admin.time())[0]) * 1000
        honest = json.dumps({"models": {"frontier": {"w": 1, "queue_depth": 3}}})
        for i in range(3):
            await admin.hset(workers, f"honest-{i}", f"{now_ms} {honest}")
        await gateway.exchange()
        assert gateway.replicas == 3 and gateway.value("frontier", "queue_depth") == 3  # honest ones read
        pad = json.dumps({"models": {"frontier": {"w": 1, "pad": "x" * (200 << 10)}}})
        pipe = admin.pipeline(transaction=False)
        for i in range(40):  # 8 MB: each field under 256 KB, 43 fields under 4,000
            pipe.hset(workers, f"w{i}", f"{now_ms} {pad}")
        await pipe.execute()
        before = int(counters.info("stats")["total_net_output_bytes"])
        await gateway.exchange()
        sent = int(counters.info("stats")["total_net_output_bytes"]) - before
        assert sent < 1 << 20, f"Redis sent {sent:,} bytes for one exchange"
        assert await admin.hlen(workers) == 0  # dropped; live workers publish again at their next heartbeat
    finally:
        await gateway.close()
        await admin.aclose()
        counters.close()
