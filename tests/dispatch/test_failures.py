"""The acceptance runs with real processes on loopback: a `tierwise worker` killed with SIGKILL in
the middle of 100 tasks, and Redis itself killed and restarted under running workers, callers
and a gateway (a redis-server of the test's own, with and without AOF)."""

from __future__ import annotations

import asyncio
import threading
import time

import openai
import orjson
import pytest
import redis.asyncio as aredis

from tests.dispatch.conftest import REDIS_URL, HoldAfter, echo, worker_config
from tests.doubles import Gate
from tests.harness import two_tier_config
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.keys import ZONES, Keyspace

N = 100


async def test_kill9_a_worker_mid_run(openai_up, redis_prefix, worker_processes):
    # The first 20 tasks are answered at once; every later one is held upstream until w1 is dead, so w1 holds a full
    # slot of tasks it will never finish when it is killed. Killed "mid-run" by timing alone (after 20 results
    # were seen), a loaded machine (this loop stalled, the worker processes not) killed a w1 that held nothing:
    # the workers had answered nearly all 100 before this loop saw 20 results, and nothing was re-claimed from w1.
    upstream = HoldAfter(20)
    openai_up.default = upstream
    procs = {name: worker_processes(worker_config(openai_up.url, redis_prefix, worker_id=name, capacity=4,
                                                           presence_ttl=1.0), name)
             for name in ("w1", "w2")}
    for p in procs.values():
        p.wait_ready()
    keys = Keyspace(redis_prefix, "acme")
    r = aredis.from_url(REDIS_URL)
    async with Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, timeout=120) as d:
        tasks = [asyncio.create_task(d.dispatch("classify", f"task {i}")) for i in range(N)]
        try:
            await upstream.until_held(8)  # both workers' four slots taken by held tasks
            alive_ttl_ms = await r.pttl(keys.presence("w1"))
            procs["w1"].kill9()  # mid-run: it holds tasks it will never finish
            ttl_ms = await r.pttl(keys.presence("w1"))
        finally:
            upstream.release.set()
        results = await asyncio.gather(*tasks)
        duplicates = d.duplicates
        # (entries ever added: the caller deletes each result it has read)
        delivered = (await r.xinfo_stream(d.results_key("any", "classify")))["entries-added"]
    # every task completed, each once, with its own answer
    assert [x.text for x in results] == [f"echo:task {i}" for i in range(N)]
    assert len({x.task_id for x in results}) == N
    assert delivered == N and duplicates == 0  # one result per task reached the caller's stream
    # the dead worker's tasks were re-claimed and finished by the other
    reclaimed = [x for x in results if x.attempt > 1]
    assert reclaimed and {x.worker for x in reclaimed} == {"w2"}
    assert {x.worker for x in results} == {"w1", "w2"}
    # nothing left behind, nothing dead-lettered
    assert sum([await r.xlen(k) for k in keys.streams("any", "classify")]) == 0
    assert await r.xlen(keys.dead("classify")) == 0
    # its presence expires by its TTL (1 s): at most that while it lived; after its death nothing renewed it (read
    # at once, or already gone when a stalled loop read it late), and then it was gone
    assert 0 < alive_ttl_ms <= 1000
    assert ttl_ms == -2 or 0 < ttl_ms <= 1000, ttl_ms
    await asyncio.sleep(max(ttl_ms, 0) / 1000 + 0.1)
    assert await r.exists(keys.presence("w1")) == 0
    assert await r.exists(keys.presence("w2")) == 1
    await r.aclose()


@pytest.mark.parametrize("appendonly", [True, False], ids=["aof", "no-persistence"])
async def test_redis_restart_mid_run(appendonly, own_redis, openai_up, anthropic_up, gateway, redis_prefix,
                                     worker_processes, tmp_path):
    srv = own_redis(appendonly=appendonly)
    # Every answer is held upstream until Redis is gone: the worker's four slots are busy and the rest of the 16
    # tasks queued when it goes. With a 0.3 s answer a loaded machine (this loop stalled, the worker process not)
    # had finished them all before Redis was stopped: nothing was left queued.
    release = threading.Event()
    openai_up.default = Gate(release, then=echo())
    w = worker_processes(worker_config(openai_up.url, redis_prefix, worker_id="w1", capacity=4,
                                       redis_url=srv.url), "w1")
    w.wait_ready()
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {"capability": "classify"}},
                                dispatch={"redis_url": srv.url, "prefix": redis_prefix, "tenant": "acme",
                                          "timeout": 30}))
    client = openai.AsyncOpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0, timeout=40)
    keys = Keyspace(redis_prefix, "acme")
    async with Dispatcher(srv.url, tenant="acme", prefix=redis_prefix, timeout=30) as d:
        direct = [asyncio.create_task(d.dispatch("classify", f"task {i}")) for i in range(12)]
        via_gateway = [asyncio.create_task(client.chat.completions.create(
            model="main", messages=[{"role": "user", "content": f"http {i}"}])) for i in range(4)]
        # Stop Redis once all 16 tasks are in its streams: the first are running on the worker, the
        # rest queued (a fixed pause was too short on a loaded machine: nothing was published yet).
        r = aredis.from_url(srv.url)
        streams = [s for z in ZONES for s in keys.streams(z, "classify")]
        try:
            deadline = time.monotonic() + 60
            while sum([(await r.xinfo_stream(s))["entries-added"] for s in streams if await r.exists(s)]) < 16:
                assert time.monotonic() < deadline, "the tasks were not published"
                await asyncio.sleep(0.01)
            assert sum([await r.xlen(s) for s in streams]) > 0  # some still queued when Redis goes
            await r.aclose()
            srv.stop()
        finally:
            release.set()  # the running ones answer while Redis is away
        await asyncio.sleep(0.5)
        srv.start()  # same port; with AOF the streams come back, without it everything is gone
        results = await asyncio.gather(*direct)
        answers = await asyncio.gather(*via_gateway)
        assert [x.text for x in results] == [f"echo:task {i}" for i in range(12)]
        assert [a.choices[0].message.content for a in answers] == [f"echo:http {i}" for i in range(4)]
        if not appendonly:
            assert d.republished > 0  # Redis forgot them: the caller published them again
        # the worker is back in presence, and serves new work
        r = aredis.from_url(srv.url)
        deadline = time.monotonic() + 10
        while not await r.exists(keys.presence("w1")):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await r.aclose()
        assert (await d.dispatch("classify", "after")).text == "echo:after"
    await client.close()
    assert w.stop() == 0
    assert "Traceback" not in w.output()


async def test_redis_gone_for_good_fails_clearly(own_redis, redis_prefix):
    srv = own_redis(appendonly=False)
    async with Dispatcher(srv.url, tenant="acme", prefix=redis_prefix, timeout=1.5) as d:
        srv.stop()
        from tierwise.dispatch.errors import DispatchUnavailable

        with pytest.raises(DispatchUnavailable, match=r"Redis at 127\.0\.0\.1:\d+ was unreachable"):
            await d.dispatch("classify", "x")


async def test_an_outage_fails_after_unavailable_wait_not_the_whole_timeout(own_redis, redis_prefix):
    # Before: a caller whose Redis went away waited out the task's whole timeout (120 s by default)
    # before hearing of it; now `unavailable_wait` bounds that, whatever the timeout.
    from tierwise.dispatch.errors import DispatchUnavailable

    srv = own_redis(appendonly=False)
    async with Dispatcher(srv.url, tenant="acme", prefix=redis_prefix, timeout=3600, unavailable_wait=0.5) as d:
        srv.stop()
        with pytest.raises(DispatchUnavailable, match=r"unreachable for \d+\.\d s.*unavailable_wait"):
            await asyncio.wait_for(d.dispatch("classify", "x"), 60)  # (a TimeoutError here: the hour-long wait)


async def test_an_outage_is_warned_once_not_at_every_retry(redis_prefix, caplog):
    # Before: "lost Redis ...; reconnecting" at every backoff step (about one a second, ~120 lines
    # for one request waiting out the default timeout), because the retry counted as "back".
    import logging

    from tests.harness import free_port
    from tierwise.dispatch.errors import DispatchUnavailable

    caplog.set_level(logging.INFO, logger="tierwise.dispatch")
    async with Dispatcher(f"redis://127.0.0.1:{free_port()}/0", tenant="acme", prefix=redis_prefix,
                          timeout=2.5) as d:
        with pytest.raises(DispatchUnavailable):
            await d.dispatch("classify", "x")
    messages = [r.getMessage() for r in caplog.records]
    assert sum("lost Redis" in m for m in messages) == 1, messages
    assert not any("is back" in m for m in messages), messages


async def test_sigterm_finishes_running_tasks_then_leaves(openai_up, redis_prefix, worker_processes):
    openai_up.default = echo(0.5)
    w = worker_processes(worker_config(openai_up.url, redis_prefix, worker_id="w1", capacity=4), "w1")
    w.wait_ready()
    keys = Keyspace(redis_prefix, "acme")
    r = aredis.from_url(REDIS_URL)
    async with Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, timeout=20) as d:
        tasks = [asyncio.create_task(d.dispatch("classify", f"t{i}")) for i in range(3)]
        while len(openai_up.requests) < 3:  # all three running on the worker
            await asyncio.sleep(0.01)
        w.proc.terminate()
        results = await asyncio.gather(*tasks)
        assert [x.text for x in results] == ["echo:t0", "echo:t1", "echo:t2"]
        assert {x.attempt for x in results} == {1}  # finished by the worker that took them
    assert await asyncio.to_thread(w.proc.wait, 20) == 0
    # its record says it stopped, and its index entry stays until its TTL: a restart within it refuses no request
    # (session 38, review38b; tests/dispatch/test_worker_restart.py); it was removed at once before
    assert orjson.loads(await r.get(keys.presence("w1")))["status"] == "stopped"
    sec, _ = await r.time()
    assert await r.zcount(keys.index("any", "classify"), int(sec) * 1000, "+inf") == 1
    await r.aclose()


async def test_a_worker_whose_redis_is_away_says_so_and_never_claims_ready(redis_prefix, tmp_path, caplog):
    # Before: silence while it waited for Redis, then "serving ..." and "ready" on the way out when
    # stopped, though it had never reached Redis.
    import logging

    from tests.harness import free_port, make_config
    from tierwise.dispatch.worker import Worker
    from tierwise.server.build import build_gateway

    caplog.set_level(logging.INFO, logger="tierwise.dispatch")
    away = f"redis://127.0.0.1:{free_port()}/0"
    cfg = make_config(worker_config("http://127.0.0.1:9", redis_prefix, worker_id="box-1", redis_url=away), tmp_path)
    gw = build_gateway(cfg)
    w = Worker(cfg, gw)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(w.run(stop, ready))
    for _ in range(200):  # until the warning (the first failed connect), at most ~10 s
        if any("is not reachable yet" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    assert any(f"Redis at 127.0.0.1:{away.split(':')[2].split('/')[0]} is not reachable yet" in r.getMessage()
               for r in caplog.records)
    stop.set()
    await asyncio.wait_for(task, 20)
    await gw.close()
    assert not ready.is_set()
    assert not any("serving" in r.getMessage() for r in caplog.records)
