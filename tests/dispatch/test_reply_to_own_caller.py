"""A task's reply address names a result stream of the caller whose queue it came from (session 38, dist9).

A task names where its answer goes (`reply`), and a worker checked only that it was one of the tenant's result
streams for the task's capability and zone. A named caller, whose rules allow XADD on its own queues, published
tasks there naming another caller's result streams (`r:<other caller>:<any instance>:<zone>:<cap>`): workers then
wrote into keys that caller's user reads and must delete, up to 100,000 results of up to `max_payload_bytes` per
stream and any number of streams (instances are the publisher's to invent), which nobody read when the instance
named was not a live one. Workers now answer only on the publishing caller's own result streams and dead-letter
the rest. ACL users are made on the shared Redis and deleted after."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
import redis.asyncio as aredis

from tests.dispatch.conftest import REDIS_URL, echo, printed_rules, running_worker, worker_config
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401 (the same fixture)
from tierwise.dispatch.acl import caller_rules
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.keys import Keyspace


@pytest.mark.asyncio
async def test_a_caller_cannot_have_workers_answer_into_another_callers_result_streams(
        acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    openai_up.default = echo()
    keys = Keyspace(redis_prefix, "acme")
    admin = aredis.from_url(REDIS_URL)
    hostile = aredis.from_url(acl_users(caller_rules(redis_prefix, "acme", caller="app-a")))
    url_b = acl_users(caller_rules(redis_prefix, "acme", caller="app-b"))
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                         callers=["app-a", "app-b"])
    data["dispatch"]["redis_url"] = acl_users(printed_rules(data, tmp_path, "w1.yaml"))
    victim = keys.results("app-b:0123456789abcdef0123", "any", "classify")  # an instance of app-b's (or none's)
    body = orjson.dumps({"messages": [{"role": "user", "content": "x" * 1000}]})
    try:
        async with running_worker(data, tmp_path / "w"):
            for i in range(5):
                await hostile.xadd(keys.stream("any", "classify", "normal", "app-a"),
                                   {"id": f"t{i}", "reply": victim, "p": body})
            deadline = time.monotonic() + 20
            while await admin.xlen(keys.dead("classify")) + await admin.xlen(victim) < 5:
                assert time.monotonic() < deadline, "the worker never handled the planted tasks"
                await asyncio.sleep(0.05)
            written = await admin.xlen(victim)
            # the tasks app-a publishes the usual way are served, on its own result stream
            async with Dispatcher(acl_users(caller_rules(redis_prefix, "acme", caller="app-a")), tenant="acme",
                                  prefix=redis_prefix, caller="app-a") as d:
                assert (await d.dispatch("classify", "mine", timeout=20)).text == "echo:mine"
            async with Dispatcher(url_b, tenant="acme", prefix=redis_prefix, caller="app-b") as d:
                assert (await d.dispatch("classify", "theirs", timeout=20)).text == "echo:theirs"
    finally:
        await hostile.aclose()
        await admin.aclose()
    assert written == 0
