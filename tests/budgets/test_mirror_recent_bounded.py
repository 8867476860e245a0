"""The spend mirror's index of counters settled lately (`<prefix>epoch:recent`) keeps a counter's slot no longer than
the counter: before review30c every member stayed 33 days, whatever its window (bench/spend_mirror_memory.py: 100,000
closed one-second slots of a `{rolling: 1m}` budget held 12.1 MB, 121 bytes each; at one request a second, 345 MB a
budget after 33 days). A slot still open stays, read by the looks."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.harness import drop_redis_keys
from tierwise.budgets.checks import Settlement
from tierwise.budgets.store_redis import RedisStore

REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture
def redis_prefix():
    prefix = f"tierwise-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    drop_redis_keys(REDIS_URL, prefix)


def test_closed_slots_leave_the_index_and_open_ones_stay(redis_prefix):
    async def go() -> tuple[int, list[str]]:
        store = RedisStore(REDIS_URL, redis_prefix, timeout=5)
        try:
            key = redis_prefix + "b:cap"
            # 200 one-second slots that close in a second, and one slot of an open counter
            await asyncio.gather(*(store.settle(f"r{i}", [Settlement(key, 1000 + i, 0.0, 0, 0.001, 1, 1)], [],
                                                now=time.time(), settled_ttl=60) for i in range(200)))
            await store.settle("open", [Settlement(redis_prefix + "b:month", 7, 0.0, 0, 0.5, 1, 3600)], [],
                               now=time.time(), settled_ttl=60)
            recent = store.ekey + ":recent"
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and await store.client.zcard(recent) > 1:
                await asyncio.sleep(0.2)
                await store._look(args=[store.ekey, uuid.uuid4().hex, "0"])
            return await store.client.zcard(recent), await store.client.zrange(recent, 0, -1)
        finally:
            if store._watcher is not None:
                store._watcher.cancel()
            await store.close()

    left, members = asyncio.run(go())
    assert left == 1, f"{left} members kept of 201 (200 closed slots)"
    assert members == [redis_prefix + "b:month 7"]


def test_a_page_that_cuts_a_batchs_counters_does_not_skip_the_rest(redis_prefix):
    """A look reads at most 2,048 counters and the next one reads on after the last one's score; the counters of one
    settlement call share its score (Redis's TIME), so those of a call a page cut in two were skipped before
    review30c: a gateway's mirror never saw them (3 budgets a settlement, 64 settlements a call: 2,400 counters, 144
    never mirrored)."""

    async def go() -> int:
        store = RedisStore(REDIS_URL, redis_prefix, timeout=5)
        try:
            n = 800  # settlements of 3 budgets each: 2,400 counters in calls of 192
            await asyncio.gather(*(store.settle(f"r{i}", [Settlement(f"{redis_prefix}b:{j}", i, 0.0, 0, 0.001, 1, 3600)
                                                          for j in range(3)], [], now=time.time(), settled_ttl=60)
                                   for i in range(n)))
            if store._watcher is not None:
                store._watcher.cancel()
            mirror = type(store.mirror)()
            since: str = "0"
            for _ in range(4):
                out = await store._look(args=[store.ekey, uuid.uuid4().hex, since])
                mirror.sample(float(out[1]), out[3:], time.time())
                since = out[2]
            return sum(1 for c in mirror.counters.values() if c[0] > 0)
        finally:
            if store._watcher is not None:
                store._watcher.cancel()
            await store.close()

    assert asyncio.run(go()) == 2400
