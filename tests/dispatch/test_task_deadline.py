"""A task nobody waits for stops holding its worker (session 22, attack-mcp).

The worker checked a task's deadline only before starting it, and a caller withdrew its task only when
it timed out: a task whose model call never ended (an upstream that sends nothing, under a long read
timeout) kept its slot after its caller had been cancelled (a gateway's client hanging up) or had died,
and every task behind it on a worker of capacity 1 waited. Real Redis (the test's own key prefix), a
real worker in this event loop, the OpenAI upstream double.
"""

from __future__ import annotations

import asyncio

from tests.dispatch.conftest import REDIS_URL, running_worker, worker_config
from tierwise.dispatch.client import Dispatcher


def hanging_upstream(openai_up) -> None:
    from tests.doubles import Delay, Reply

    def answer(rec):
        prompt = str(rec.body["messages"][-1]["content"])
        if prompt == "hang":
            return Delay(3600, then=Reply(text="too late"))
        return Reply(text="echo:" + prompt, usage=(5, 2))

    openai_up.default = answer


def one_slot_worker(openai_up, redis_prefix) -> dict:
    cfg = worker_config(openai_up.url, redis_prefix, worker_id="box-1", capacity=1)
    cfg["providers"]["box"]["timeouts"] = {"connect": 1, "read": 3600}  # the upstream may take its time
    return cfg


async def started(w) -> None:
    while not w.running:
        await asyncio.sleep(0.01)


async def test_a_cancelled_callers_task_frees_its_slot(openai_up, redis_prefix, tmp_path):
    hanging_upstream(openai_up)
    async with running_worker(one_slot_worker(openai_up, redis_prefix), tmp_path) as w, \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:
        waiting = asyncio.create_task(d.dispatch("classify", "hang", timeout=600))
        await started(w)
        waiting.cancel()  # the caller leaves, as a gateway's request does when its client hangs up
        # (before: the hung call kept the only slot for its hour; this one timed out in the queue)
        r = await d.dispatch("classify", "next", timeout=60)
        assert r.text == "echo:next"
        assert w.stats["lost"] == 1  # withdrawn: the worker cancelled it at its next heartbeat


async def test_a_task_past_its_deadline_stops_even_when_its_caller_is_gone(openai_up, redis_prefix, tmp_path):
    hanging_upstream(openai_up)
    async with running_worker(one_slot_worker(openai_up, redis_prefix), tmp_path) as w, \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as gone, \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:

        async def never(_w) -> None:  # a caller that died: it withdraws nothing
            return None

        gone._withdraw = never  # type: ignore[method-assign]
        waiting = asyncio.create_task(gone.dispatch("classify", "hang", timeout=2))
        await started(w)
        waiting.cancel()
        r = await d.dispatch("classify", "next", timeout=60)
        assert r.text == "echo:next"
        assert w.stats["failed"] == 1 and w.stats["lost"] == 0  # ended at its deadline, by the worker (504)
