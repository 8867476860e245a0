"""A caller cannot keep the workers of a capability spinning with wake-up tokens (session 37, dist8).

A caller's rules allow LPUSH on its wake lists (the publishing script adds a token per task) and Redis cannot limit
how many: 100,000 tokens with no task behind them woke every idle worker 100,000 times, each time for a take that
found nothing (a worker's take removed tokens only for the tasks it took). A take that finds nothing now empties the
wake lists of the queues it read: there is nothing there to wake anyone for."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aredis

from tests.dispatch.conftest import REDIS_URL, echo, printed_rules, running_worker, worker_config
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401 (the same fixture)
from tierwise.dispatch.acl import caller_rules
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.keys import Keyspace


@pytest.mark.asyncio
async def test_a_flood_of_wake_tokens_is_dropped_by_the_first_take_that_finds_nothing(
        acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    openai_up.default = echo()
    keys = Keyspace(redis_prefix, "acme")
    wake = keys.wake("any", "classify", "app")
    url = acl_users(caller_rules(redis_prefix, "acme", caller="app"))
    hostile = aredis.from_url(url)
    admin = aredis.from_url(REDIS_URL)
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                         callers=["app"])
    data["dispatch"]["redis_url"] = acl_users(printed_rules(data, tmp_path, "w1.yaml"))
    try:
        for _ in range(10):
            await hostile.lpush(wake, *["1"] * 10_000)  # its own wake list: allowed
        async with running_worker(data, tmp_path / "w") as w:
            takes = 0
            real = w.scripts.take

            async def counted(*a, **kw):  # noqa: ANN002, ANN003, ANN202
                nonlocal takes
                takes += 1
                return await real(*a, **kw)

            w.scripts.take = counted
            deadline = time.monotonic() + 20
            while takes < 3:
                assert time.monotonic() < deadline, "the worker never took again"
                await asyncio.sleep(0.01)
            assert await admin.llen(wake) == 0
            async with Dispatcher(url, tenant="acme", prefix=redis_prefix, caller="app") as d:
                assert (await d.dispatch("classify", "hi", timeout=20)).text == "echo:hi"  # tokens still wake
    finally:
        await hostile.aclose()
        await admin.aclose()
