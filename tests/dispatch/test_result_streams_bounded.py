"""A caller's result streams hold only results not yet read.

The reader read results and left them: each stream kept up to 100,000 of them (of up to `max_payload_bytes`
each) per caller process, zone and capability, expiring `result_ttl` after the last one, which steady traffic
never reaches. A gateway answering for days filled Redis with every answer it had already delivered.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aredis

from tests.dispatch.conftest import echo, running_worker, worker_config
from tierwise.dispatch.client import Dispatcher

pytestmark = pytest.mark.asyncio
REDIS_URL = "redis://127.0.0.1:6379/12"


@pytest.fixture
async def prefix():
    p = f"tierwise-test-results:{uuid.uuid4().hex[:12]}:"
    yield p
    r = aredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in r.scan_iter(match=p + "*", count=1000)]
    if keys:
        await r.delete(*keys)
    await r.aclose()


async def test_results_read_are_deleted(openai_up, prefix, tmp_path):
    redis_prefix = prefix
    openai_up.default = echo()
    cfg = worker_config(openai_up.url, redis_prefix, worker_id="box-1", capacity=4, redis_url=REDIS_URL)
    async with running_worker(cfg, tmp_path), Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:
        results = await asyncio.gather(*[d.dispatch("classify", f"task {i}") for i in range(20)])
        assert [r.text for r in results] == [f"echo:task {i}" for i in range(20)]
        r = aredis.Redis.from_url(REDIS_URL)
        try:
            streams = [k async for k in r.scan_iter(match=f"{redis_prefix}{{acme}}:r:*:classify")]
            assert streams  # the capability's result stream of this caller process
            for _ in range(200):  # the reader deletes what it read right after delivering it
                lengths = [await r.xlen(k) for k in streams]
                if not any(lengths):
                    break
                await asyncio.sleep(0.05)
            assert lengths == [0] * len(streams)
            more = await d.dispatch("classify", "after")  # and the stream still serves
            assert more.text == "echo:after"
        finally:
            await r.aclose()
