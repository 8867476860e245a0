"""An index entry scored past any heartbeat's reach is not a present worker.

A worker's rules allow ZADD on its capabilities' presence index (it adds its own entry), and Redis cannot limit the
score: under its printed rules a worker could score an entry 9e15 (the year 287,000). The publishing script counted
it present for ever, after the worker was gone and its user deleted: every task of the capability waited out its
caller's whole timeout (120 s by default) instead of NoWorker at once, and a route's fallback waited as long
(session 36, review36d). An honest entry is at most `presence_ttl` (at most 86,400 s) ahead of Redis's clock: one
further ahead is not counted, and the publishing script removes it with the expired ones."""

from __future__ import annotations

import pytest
import redis.asyncio as aredis

from tests.dispatch.conftest import REDIS_URL, printed_rules, worker_config
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401 (the same fixture)
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.errors import NoWorker
from tierwise.dispatch.keys import Keyspace
from tierwise.dispatch.presence import present_count


@pytest.mark.asyncio
async def test_an_entry_scored_for_ever_is_not_a_present_worker(
        acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    keys = Keyspace(redis_prefix, "acme")
    index = keys.index("any", "classify")
    data = worker_config(openai_up.url, redis_prefix, worker_id="w2", locality="remote", provider_locality="remote")
    hostile = aredis.from_url(acl_users(printed_rules(data, tmp_path, "w2.yaml")))
    admin = aredis.from_url(REDIS_URL)
    try:
        assert await hostile.zadd(index, {"w2": 9e15}) == 1  # allowed: its own entry, any score
        assert await present_count(admin, keys, "any", "classify") == 0
        async with Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:
            with pytest.raises(NoWorker):
                await d.dispatch("classify", "anyone?", timeout=3)
        assert await admin.zscore(index, "w2") is None  # removed by the publishing script
        # an honest entry at the longest presence_ttl is still counted
        sec, _ = await admin.time()
        await admin.zadd(index, {"w1": (int(sec) + 86_000) * 1000})
        assert await present_count(admin, keys, "any", "classify") == 1
    finally:
        await hostile.aclose()
        await admin.aclose()
