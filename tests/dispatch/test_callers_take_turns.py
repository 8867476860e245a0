"""A worker takes from the callers it lists in turn (session 37, dist8): with a queue per caller, a take that read
the callers' queues in one fixed order served the first caller's whole backlog before another caller's task of the
same priority."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.dispatch.conftest import REDIS_URL, running_worker, worker_config
from tierwise.dispatch.client import Dispatcher


async def served_order(openai_up, redis_prefix, tmp_path, hog: str, priority: str) -> list[str]:  # noqa: ANN001
    """The order one worker (one slot) answered `hog`'s 10-task backlog at `priority` and app-b's one normal task
    published after it, all queued while the worker held the backlog's first task."""
    from tests.doubles import Gate, Reply

    held = threading.Event()
    order: list[str] = []

    def answer(rec):  # noqa: ANN001, ANN202
        prompt = str(rec.body["messages"][-1]["content"])
        order.append(prompt)
        reply = Reply(text="echo:" + prompt, usage=(5, 2))
        return Gate(held, then=reply) if len(order) == 1 else reply

    openai_up.default = answer
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                         capacity=1, callers=[hog, "app-b"])
    async with running_worker(data, tmp_path / "w"), \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, caller=hog) as a, \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, caller="app-b") as b:
        try:
            backlog = [asyncio.create_task(a.dispatch("classify", f"a{i}", priority=priority, timeout=60))
                       for i in range(10)]
            deadline = time.monotonic() + 20
            while not order:  # the worker's one slot holds a0 until the rest are queued
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            other = asyncio.create_task(b.dispatch("classify", "b0", timeout=60))  # priority normal
            while len(a._waiting) < 9 or not b._waiting or any(w.entry_id is None for w in
                                                               [*a._waiting.values(), *b._waiting.values()]):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
        finally:
            held.set()
        await asyncio.gather(*backlog, other)
    return order


@pytest.mark.asyncio
async def test_one_callers_backlog_does_not_starve_another_callers_task(openai_up, redis_prefix, tmp_path):
    order = await served_order(openai_up, redis_prefix, tmp_path, "app-a", "normal")
    assert order.index("b0") <= 2, order
