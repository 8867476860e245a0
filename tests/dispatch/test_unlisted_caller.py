"""A caller no worker lists learns it at once, and so does a task stranded with a dead worker (session 38, dist9).

Workers read the queues of the callers their config lists (`dispatch.callers`). A caller none of them lists published
without error (the capability's workers were present) and each task waited out its timeout, 120 s by default; a task
of a caller dropped from every worker's list, taken by the last worker that still listed it before that worker died,
was never re-claimed and waited out its timeout too. Workers now also say, in the presence index of each caller they
list, that they read its queues: publishing refuses at once (NoWorker, 503 in the client's schema) when the workers
present list other callers only, and a waiting task hears it within seconds of it becoming so. Workers of before
this version say nothing of their callers: while one is present nothing is refused on that account."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aredis

from tests.dispatch.conftest import REDIS_URL, HoldAfter, echo, running_worker, worker_config
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.errors import DispatchTimeout, NoWorker
from tierwise.dispatch.keys import Keyspace


@pytest.mark.asyncio
async def test_a_caller_no_worker_lists_is_refused_at_once(openai_up, redis_prefix, tmp_path):
    openai_up.default = echo()
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                         callers=["app-a"])
    async with running_worker(data, tmp_path / "w"), \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, caller="app-a") as a, \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, caller="ops") as ops:
        assert (await a.dispatch("classify", "listed", timeout=20)).text == "echo:listed"
        t0 = time.monotonic()
        with pytest.raises(NoWorker) as refused:
            await ops.dispatch("classify", "unlisted", timeout=6)
        waited = time.monotonic() - t0
        # a worker of before this version (in the index, silent about its callers) may list it: not refused
        admin = aredis.from_url(REDIS_URL)
        sec, _ = await admin.time()
        await admin.zadd(Keyspace(redis_prefix, "acme").index("any", "classify"), {"old#x": (int(sec) + 60) * 1000})
        await admin.aclose()
        with pytest.raises(DispatchTimeout):
            await ops.dispatch("classify", "an old worker may list it", timeout=2)
    assert waited < 6
    assert "none lists caller 'ops' in its dispatch.callers" in str(refused.value), refused.value


@pytest.mark.asyncio
async def test_a_task_stranded_by_its_workers_death_ends_when_no_worker_lists_its_caller(
        openai_up, redis_prefix, worker_processes, tmp_path):
    upstream = HoldAfter(0)  # every call held: w1 dies holding app-b's task
    openai_up.default = upstream
    # w1 lists app-b, w2 (the one left) only app-a: app-b was dropped from the workers' lists in a rolling change
    w1 = worker_processes(worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote",
                                        provider_locality="remote", callers=["app-a", "app-b"], presence_ttl=2.0),
                          "w1")
    w1.wait_ready()
    w2 = worker_config(openai_up.url, redis_prefix, worker_id="w2", locality="remote", provider_locality="remote",
                       callers=["app-a"])
    try:
        async with running_worker(w2, tmp_path / "w2"), \
                Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, caller="app-b") as b:
            waiting = asyncio.create_task(b.dispatch("classify", "stranded", timeout=40))
            await upstream.until_held(1)
            w1.kill9()
            t0 = time.monotonic()
            with pytest.raises(NoWorker) as ended:
                await waiting
            waited = time.monotonic() - t0
    finally:
        upstream.release.set()
    assert "none lists caller 'app-b'" in str(ended.value), ended.value
    assert waited < 30


@pytest.mark.asyncio
async def test_a_waiting_task_outlives_a_restart_of_the_only_worker_listing_its_caller(
        openai_up, redis_prefix, tmp_path):
    """The refusal of a waiting task waits until no worker has listed its caller for a while (10 s): a restart of the
    one worker that lists it (stop, start) must not end the tasks that worker will take when it is back."""
    upstream = HoldAfter(0, most=1)
    openai_up.default = upstream
    w1 = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                       callers=["app-b"], capacity=1)
    w2 = worker_config(openai_up.url, redis_prefix, worker_id="w2", locality="remote", provider_locality="remote",
                       callers=["app-a"])
    async with running_worker(w2, tmp_path / "w2"), \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, caller="app-b") as b:
        async with running_worker(w1, tmp_path / "w1"):
            first = asyncio.create_task(b.dispatch("classify", "held", timeout=40))
            await upstream.until_held(1)
            queued = asyncio.create_task(b.dispatch("classify", "queued", timeout=40))
            await asyncio.sleep(0.5)
        await asyncio.sleep(5)  # w1 away for longer than two looks of the waiting tasks
        upstream.release.set()
        async with running_worker(w1, tmp_path / "w1-again"):
            assert (await queued).text == "echo:queued"
            first.cancel()
