"""A caller cannot starve the others by marking its tasks `high` (session 37, review37a).

Priority is the caller's to choose. With the take script reading every caller's high queues before any caller's
normal ones, one application that published its whole backlog as `high` (and kept it full) had the workers serve
none of the other callers' normal tasks until it ran dry: the per-caller turn (dist8) held within one priority only.
A worker now goes round the callers it lists, and a caller's priority orders that caller's own tasks."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.dispatch.conftest import REDIS_URL, running_worker, worker_config
from tierwise.dispatch.client import Dispatcher


@pytest.mark.asyncio
async def test_a_callers_high_priority_backlog_does_not_starve_another_callers_normal_task(
        openai_up, redis_prefix, tmp_path):
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
                         capacity=1, callers=["hog", "app-b"])
    async with running_worker(data, tmp_path / "w"), \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, caller="hog") as hog, \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, caller="app-b") as b:
        try:
            backlog = [asyncio.create_task(hog.dispatch("classify", f"h{i}", priority="high", timeout=60))
                       for i in range(10)]
            deadline = time.monotonic() + 20
            while not order:  # the worker's one slot holds h0 until the rest are queued
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            other = asyncio.create_task(b.dispatch("classify", "b0", timeout=60))  # priority normal
            while len(hog._waiting) < 9 or not b._waiting or any(w.entry_id is None for w in
                                                                 [*hog._waiting.values(), *b._waiting.values()]):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
        finally:
            held.set()
        await asyncio.gather(*backlog, other)
    assert order.index("b0") <= 2, order
