"""A named caller (one application of a tenant, under its printed rules) cannot empty, block or spoil another
caller's task queues.

The queues were shared by the tenant's callers and publishing takes XADD, whose arguments Redis cannot limit: one
caller's `XADD … MAXLEN 0` removed every other caller's waiting task, an XADD of the largest id
(18446744073709551615-18446744073709551615) made every later publish to the queue fail, and LPUSH on a queue not
created yet (or XADD on a wake list) made it the wrong type for every caller (session 37, dist8). Each caller now
publishes to queues of its own; workers read those of the callers their config names. ACL users are made on the
shared Redis and deleted after."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aredis

from tests.dispatch.conftest import REDIS_URL, echo, printed_rules, running_worker, worker_config
from tests.dispatch.shared_key_attempts import let_through
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401 (the same fixture)
from tierwise.dispatch.acl import caller_rules
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.keys import Keyspace

MAX_ID = "18446744073709551615-18446744073709551615"


async def _queued(admin: aredis.Redis, prefix: str, kind: str) -> list[str]:
    """The tenant's keys of one kind (`q`, `wake`) that exist now (found by name, whatever their layout)."""
    return sorted([k.decode() async for k in admin.scan_iter(match=f"{prefix}{{acme}}:{kind}:*")])


@pytest.mark.asyncio
async def test_a_named_caller_cannot_empty_block_or_spoil_another_callers_queues(
        acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    openai_up.default = echo()
    keys = Keyspace(redis_prefix, "acme")
    admin = aredis.from_url(REDIS_URL)
    url_a = acl_users(caller_rules(redis_prefix, "acme", caller="app-a"))
    hostile = aredis.from_url(acl_users(caller_rules(redis_prefix, "acme", caller="app-b")))
    sec, _ = await admin.time()
    await admin.zadd(keys.index("any", "classify"), {"starting": (int(sec) + 60) * 1000})  # a worker on its way
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                         callers=["app-a", "app-b"])
    data["dispatch"]["redis_url"] = acl_users(printed_rules(data, tmp_path, "w1.yaml"))
    try:
        async with Dispatcher(url_a, tenant="acme", prefix=redis_prefix, caller="app-a") as d:
            waiting = asyncio.create_task(d.dispatch("classify", "mine", timeout=30))
            deadline = time.monotonic() + 10
            while not (queues := await _queued(admin, redis_prefix, "q")):
                assert time.monotonic() < deadline, "app-a's task was never queued"
                await asyncio.sleep(0.05)
            wakes = await _queued(admin, redis_prefix, "wake")
            (queue,) = queues
            attempts = {
                "XADD MAXLEN 0 to its queue": lambda: hostile.xadd(queue, {"x": "1"}, maxlen=0),
                "XADD the largest id to its queue": lambda: hostile.xadd(queue, {"x": "1"}, id=MAX_ID),
                "XADD the largest id to its high queue": lambda: hostile.xadd(queue.replace(":normal", ":high"),
                                                                              {"x": "1"}, id=MAX_ID),
                "LPUSH its low queue (a list: WRONGTYPE)": lambda: hostile.lpush(queue.replace(":normal", ":low"), "x"),
                "LTRIM its wake list": lambda: hostile.ltrim(wakes[0], 1, 0),
                "XADD an unused capability's wake list (a stream: WRONGTYPE)": lambda: hostile.xadd(
                    wakes[0].replace(":classify", ":summarize"), {"x": "1"}),
                "LPUSH an unused capability's queue": lambda: hostile.lpush(
                    queue.replace(":classify:", ":summarize:"), "x"),
            }
            assert await let_through(attempts) == []
            assert await admin.xlen(queue) == 1  # app-a's task still waits
            async with running_worker(data, tmp_path / "w"):
                assert (await waiting).text == "echo:mine"
                for priority in ("high", "normal", "low"):
                    got = await d.dispatch("classify", priority, priority=priority, timeout=20)
                    assert got.text == f"echo:{priority}"
    finally:
        await hostile.aclose()
        await admin.aclose()
