"""A dispatch that times out says whether any worker took the task (session 37, newuser37b).

A caller that no worker lists in `dispatch.callers` (a new gateway, a worker config that missed it in an upgrade)
publishes without error, since the capability's workers are present, and each task waits out its timeout. The
client was then told "its workers are busy, stalled or gone", the same as for a worker that hung: nothing pointed
at the callers list. The queue's consumer group says whether the task was ever delivered. (Since session 38 such a
caller is refused at once when every worker present says whose queues it reads, tests/dispatch/test_unlisted_caller.py:
here a worker of before then is present too, which says nothing of its callers.)"""

from __future__ import annotations

import threading

import pytest
import redis.asyncio as aredis

from tests.dispatch.conftest import REDIS_URL, running_worker, worker_config
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.errors import DispatchTimeout
from tierwise.dispatch.keys import Keyspace


@pytest.mark.asyncio
async def test_a_timeout_says_whether_a_worker_took_the_task(openai_up, redis_prefix, tmp_path):
    from tests.doubles import Gate, Reply

    held = threading.Event()
    openai_up.default = Gate(held, then=Reply(text="late", usage=(5, 2)))
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                         callers=["app-a"])
    async with running_worker(data, tmp_path / "w"), \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, caller="app-a") as a, \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, caller="app-b") as b:
        admin = aredis.from_url(REDIS_URL)
        sec, _ = await admin.time()
        await admin.zadd(Keyspace(redis_prefix, "acme").index("any", "classify"), {"old#x": (int(sec) + 60) * 1000})
        await admin.aclose()
        try:
            with pytest.raises(DispatchTimeout) as unlisted:
                await b.dispatch("classify", "from b", timeout=3)
            with pytest.raises(DispatchTimeout) as stalled:
                await a.dispatch("classify", "from a", timeout=3)
        finally:
            held.set()
    assert ("no worker took it: the workers present may not list caller 'app-b' in their dispatch.callers"
            in str(unlisted.value)), unlisted.value
    assert "a worker took it and sent no answer" in str(stalled.value), stalled.value
