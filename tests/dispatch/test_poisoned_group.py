"""A worker cannot make a caller's queue hand out nothing by creating its consumer group ahead of the queue
(session 37, review37a).

A worker's rules allow XGROUP CREATE on its capabilities' queues (its take script makes the group of a new queue),
and Redis cannot limit the command's id argument: `XGROUP CREATE <queue> tierwise-workers
18446744073709551615-18446744073709551615 MKSTREAM` on a queue no task has been published to yet (with a queue per
caller and priority, most are) set the group's last-delivered id past every id Redis will ever make, and the
caller's tasks there were never handed out: each waited out its timeout. No legitimate group is ahead of its
stream's last id (a group created with `$` or `0` is not; only CREATE can put it there, and only on a stream no
worker had read), so the publishing script puts such a group back to the stream's start before it adds a task.
The ACL users are made on the shared Redis and deleted after."""

from __future__ import annotations

import pytest
import redis.asyncio as aredis

from tests.dispatch.conftest import echo, printed_rules, running_worker, worker_config
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401 (the same fixture)
from tierwise.dispatch.acl import caller_rules
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.keys import GROUP, Keyspace

MAX_ID = "18446744073709551615-18446744073709551615"


@pytest.mark.asyncio
async def test_a_group_created_past_every_id_does_not_stop_a_callers_queue(
        acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    openai_up.default = echo()
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                         callers=["app-a"])
    data["dispatch"]["redis_url"] = acl_users(printed_rules(data, tmp_path, "w1.yaml"))
    hostile = aredis.from_url(data["dispatch"]["redis_url"])  # the worker's own user, under its printed rules
    for priority in ("high", "normal"):
        queue = Keyspace(redis_prefix, "acme").stream("any", "classify", priority, "app-a")
        await hostile.xgroup_create(queue, GROUP, id=MAX_ID, mkstream=True)
    await hostile.aclose()
    url = acl_users(caller_rules(redis_prefix, "acme", caller="app-a"))
    async with running_worker(data, tmp_path / "w"), \
            Dispatcher(url, tenant="acme", prefix=redis_prefix, caller="app-a") as d:
        assert (await d.dispatch("classify", "one", timeout=8)).text == "echo:one"
        assert (await d.dispatch("classify", "two", priority="high", timeout=8)).text == "echo:two"
