"""Tasks queued in the layout of before session 37 are served after an upgrade (session 37, review37a).

Until session 37 a tenant's callers shared one queue per zone, capability and priority (`q:<zone>:<cap>:<priority>`);
workers now read one queue per caller (`q:…:<priority>:<caller>`). Upgraded workers never looked at the old queues:
the tasks waiting there when the workers were upgraded, those an old worker had taken when it died, and every task
of a gateway not upgraded yet (its publish still found the workers present) each waited out its caller's timeout.
A worker now also reads the old queues while they hold entries (looked at each heartbeat), under its printed rules
of this version. The ACL users are made on the shared Redis and deleted after."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
import redis.asyncio as aredis

from tests.dispatch.conftest import REDIS_URL, echo, printed_rules, running_worker, worker_config
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401 (the same fixture)
from tierwise.dispatch.keys import GROUP
from tierwise.dispatch.tasks import task_fields


@pytest.mark.asyncio
async def test_tasks_of_the_old_shared_queues_are_served_after_an_upgrade(
        acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    openai_up.default = echo()
    admin = aredis.from_url(REDIS_URL)
    base = f"{redis_prefix}{{acme}}:"
    reply = f"{base}r:old-gw:0123abcd:any:classify"  # an old gateway's result stream
    sec, _ = await admin.time()
    deadline_ms = (int(sec) + 60) * 1000

    def body(text: str) -> bytes:
        return orjson.dumps({"messages": [{"role": "user", "content": text}]})

    old_high, old_normal = f"{base}q:any:classify:high", f"{base}q:any:classify:normal"
    for key in (old_high, old_normal):
        await admin.xgroup_create(key, GROUP, id="0", mkstream=True)
    # taken by an old worker that was then stopped for the upgrade (killed: it never completed it)
    await admin.xadd(old_high, dict(zip(*[iter(task_fields("t-taken", reply, body("taken"), deadline_ms))] * 2,
                                        strict=True)))
    await admin.xreadgroup(GROUP, "old-worker", {old_high: ">"}, count=1)
    # queued and not taken yet
    await admin.xadd(old_normal, dict(zip(*[iter(task_fields("t-queued", reply, body("queued"), deadline_ms))] * 2,
                                          strict=True)))
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote")
    data["dispatch"]["redis_url"] = acl_users(printed_rules(data, tmp_path, "w1.yaml"))
    answered: dict[str, str] = {}
    async with running_worker(data, tmp_path / "w"):
        until = time.monotonic() + 15
        while len(answered) < 2 and time.monotonic() < until:
            for _key, entries in await admin.xread({reply: "0"}) or []:
                for _id, fields in entries:
                    r = orjson.loads(fields[b"r"])
                    answered[fields[b"id"].decode()] = r["body"]["choices"][0]["message"]["content"]
            await asyncio.sleep(0.1)
    await admin.aclose()
    assert answered == {"t-taken": "echo:taken", "t-queued": "echo:queued"}
