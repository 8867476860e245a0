"""What a named caller's own queues can cost workers past its bound (session 38, dist9).

`max_pending` is checked by the publishing script, but publishing takes XADD on the caller's queues and Redis cannot
limit its arguments: under its printed rules a caller XADDs there as much as it likes, and as large as it likes.
Workers now trim each queue they read to `max_pending` entries and its wake list to the publishing script's 256
tokens at every heartbeat, and a take or re-claim hands a worker no entry larger than `max_payload_bytes` (and a
few fields'): before, a 40 MB entry went whole to the worker, once per free slot. The keys a caller may make under
its patterns that no worker reads are bounded only by Redis's `maxmemory` (docs/distributed.md). ACL users are
made on the shared Redis and deleted after."""

from __future__ import annotations

import asyncio
import threading
import time

import orjson
import pytest
import redis.asyncio as aredis

from tests.dispatch.conftest import REDIS_URL, echo, printed_rules, running_worker, worker_config
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401 (the same fixture)
from tierwise.dispatch.acl import caller_rules
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.keys import GROUP, Keyspace
from tierwise.dispatch.scripts import Scripts


@pytest.mark.asyncio
async def test_workers_trim_a_callers_queue_past_its_bound(acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    from tests.doubles import Gate

    release = threading.Event()
    openai_up.default = Gate(release, then=echo())  # the worker's one slot stays busy: it takes nothing more
    keys = Keyspace(redis_prefix, "acme")
    admin = aredis.from_url(REDIS_URL)
    hostile = aredis.from_url(acl_users(caller_rules(redis_prefix, "acme", caller="app-a")))
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                         callers=["app-a", "app-b"], max_pending=5, capacity=1)
    data["dispatch"]["redis_url"] = acl_users(printed_rules(data, tmp_path, "w1.yaml"))
    queue, wake = keys.stream("any", "classify", "high", "app-a"), keys.wake("any", "classify", "app-a")
    reply = keys.results("app-a:0123456789abcdef0123", "any", "classify")
    body = orjson.dumps({"messages": [{"role": "user", "content": "flood"}]})
    try:
        async with running_worker(data, tmp_path / "w"):
            pipe = hostile.pipeline(transaction=False)
            for i in range(300):
                pipe.xadd(queue, {"id": f"t{i}", "reply": reply, "p": body})
            pipe.lpush(wake, *["1"] * 5000)
            await pipe.execute()
            deadline = time.monotonic() + 10
            while (await admin.xlen(queue), await admin.llen(wake)) > (5, 256):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            left = (await admin.xlen(queue), await admin.llen(wake))
            release.set()
            async with Dispatcher(acl_users(caller_rules(redis_prefix, "acme", caller="app-b")), tenant="acme",
                                  prefix=redis_prefix, caller="app-b", max_pending=5) as d:
                assert (await d.dispatch("classify", "theirs", timeout=20)).text == "echo:theirs"
    finally:
        release.set()
        await hostile.aclose()
        await admin.aclose()
    assert left[0] <= 5 and left[1] <= 256, left


@pytest.mark.asyncio
async def test_a_take_hands_no_oversized_entry_to_a_worker(acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    keys = Keyspace(redis_prefix, "acme")
    admin = aredis.from_url(REDIS_URL)
    hostile = aredis.from_url(acl_users(caller_rules(redis_prefix, "acme", caller="app-a")))
    queue, wake = keys.stream("any", "classify", "normal", "app-a"), keys.wake("any", "classify", "app-a")
    reply = keys.results("app-a:0123456789abcdef0123", "any", "classify")
    await admin.xgroup_create(queue, GROUP, id="0", mkstream=True)
    try:
        await hostile.xadd(queue, {"id": "big", "reply": reply, "p": b"x" * (40 << 20)})
        got = await Scripts(admin).take(keys=[queue, wake], args=[GROUP, "w", 4, 1 << 20])
        (_idx, _entry, fields), = got
        assert sum(len(v) for v in fields) < 4096
        # the worker tells the caller at once (its reply address is its own) and keeps serving
        openai_up.default = echo()
        data = worker_config(openai_up.url, redis_prefix, worker_id="w1", callers=["app-a"])
        await hostile.xadd(queue, {"id": "big2", "reply": reply, "p": b"x" * (8 << 20)})
        async with running_worker(data, tmp_path / "w"):
            deadline = time.monotonic() + 20
            while not await admin.xlen(reply):
                assert time.monotonic() < deadline, "the caller was never told"
                await asyncio.sleep(0.05)
            (_, told), = await admin.xrange(reply, count=1)
            assert b"more than" in told[b"r"], told
    finally:
        await hostile.aclose()
        await admin.aclose()


@pytest.mark.asyncio
async def test_a_dead_letter_keeps_a_few_kb_of_an_entry_whatever_its_fields(
        acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    """A dead-lettered entry kept 4 KB of each of up to 16 fields (66 KB), and the capability's dead-letter stream
    keeps 10,000 entries: a caller's malformed XADDs filled it with 660 MB (session 38, dist9)."""
    openai_up.default = echo()
    keys = Keyspace(redis_prefix, "acme")
    admin = aredis.from_url(REDIS_URL)
    hostile = aredis.from_url(acl_users(caller_rules(redis_prefix, "acme", caller="app-a")))
    queue = keys.stream("any", "classify", "normal", "app-a")
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", callers=["app-a"])
    try:
        async with running_worker(data, tmp_path / "w"):
            await hostile.xadd(queue, {f"f{i}": "x" * 5000 for i in range(16)})  # no id: malformed
            deadline = time.monotonic() + 20
            while not await admin.xlen(keys.dead("classify")):
                assert time.monotonic() < deadline, "never dead-lettered"
                await asyncio.sleep(0.05)
        (_, kept), = await admin.xrange(keys.dead("classify"))
    finally:
        await hostile.aclose()
        await admin.aclose()
    assert sum(len(k) + len(v) for k, v in kept.items()) <= 8192 + 1024, len(kept)
