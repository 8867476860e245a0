"""Time to first token is its own statistic (streams), and a worker publishes to the same board.

- A local model that streams slowly but starts at once does not trip `ttft_ms_above`; one that
  is slow to start does (Anthropic SDK, streaming).
- A worker (anything with a `Blackboard` of its own, as `tierwise worker` will have) publishes the
  queue depth of its model; a gateway replica reads it (the largest report) and a `dynamic` route shifts on
  `queue_depth_above`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis

from tests.blackboard.test_dynamic_http import FAST, ask, dynamic_route
from tests.blackboard.test_replicas_http import replica_config
from tests.doubles import Delay, Reply, SlowStream
from tests.gateway.conftest import ant
from tests.harness import two_tier_config
from tierwise.dispatch.blackboard import Blackboard
from tierwise.dispatch.blackboard_settings import BlackboardConfig
from tierwise.providers.live_stats import LiveStats


def stream(g: Any) -> str:
    with ant(g).messages.stream(model="auto", max_tokens=20, messages=[{"role": "user", "content": "hi"}]) as s:
        return "".join(s.text_stream)


def test_ttft_shifts_on_a_slow_start_not_on_a_slow_stream(gateway, openai_up, anthropic_up):
    anthropic_up.default = Reply(text="frontier answer")
    routes = dynamic_route(shift_when={"ttft_ms_above": 300}, probe_every=0)
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes=routes))
    openai_up.default = SlowStream(0.12, Reply(text="one two three four"))  # ~0.4 s in all, first token at once
    assert [stream(g) for _ in range(3)] == ["one two three four"] * 3
    board = g.gateway.blackboard
    assert board.value("local", "latency_ms") > 300 > board.value("local", "ttft_ms")
    openai_up.default = Delay(0.6, Reply(text="late start"))
    answers = [stream(g) for _ in range(4)]
    assert "frontier answer" in answers[:3] and answers[-1] == "frontier answer", answers


async def test_worker_queue_depth_moves_a_gateway_route(gateway, openai_up, anthropic_up, redis_prefix):
    from tests.blackboard.conftest import REDIS_URL

    openai_up.default, anthropic_up.default = FAST, Reply(text="frontier answer")
    routes = dynamic_route(shift_when={"queue_depth_above": 5})
    g = gateway(replica_config(openai_up, anthropic_up, REDIS_URL, redis_prefix, routes=routes))
    assert await asyncio.to_thread(ask, g) == "local answer"

    local = LiveStats()
    worker = Blackboard(BlackboardConfig(redis_url=REDIS_URL, key_prefix=redis_prefix, publish_interval_ms=20,
                                         replica_id="worker-1"), {"local": local}, REDIS_URL)
    await worker.start()
    try:
        local.queue_depth = 12  # tasks waiting on the worker's box
        board = g.gateway.blackboard
        deadline = time.monotonic() + 20
        while board.value("local", "queue_depth") != 12:
            assert time.monotonic() < deadline, "the gateway never saw the worker's queue"
            await asyncio.sleep(0.01)
        assert await asyncio.to_thread(ask, g) == "frontier answer"
        local.queue_depth = 0
        while board.value("local", "queue_depth") != 0:
            assert time.monotonic() < deadline, "the gateway never saw the queue drain"
            await asyncio.sleep(0.01)
        assert await asyncio.to_thread(ask, g) == "local answer"
    finally:
        await worker.close()
    r = redis.Redis.from_url(REDIS_URL)
    assert r.hexists(redis_prefix + "replicas", g.gateway.blackboard.replica_id)
    assert not r.hexists(redis_prefix + "replicas", "worker-1")  # the worker left at once on close, no TTL wait
    r.close()


async def test_a_gateway_used_as_a_library_joins_the_board(tmp_path, openai_up, anthropic_up, redis_prefix):
    """No server start-up (a library, or a worker running the core): the first request starts the
    exchange, and the replica publishes its statistics for the others."""
    from tests.blackboard.conftest import REDIS_URL
    from tests.harness import make_config
    from tierwise.canonical import Message, Request, TextBlock
    from tierwise.server.build import build_gateway

    openai_up.default = FAST
    cfg = replica_config(openai_up, anthropic_up, REDIS_URL, redis_prefix)
    cfg["ledger"] = {"enabled": False}
    gw = build_gateway(make_config(cfg, tmp_path))
    try:
        assert gw.blackboard.exchanges == 0
        req = Request(model="local", messages=[Message(role="user", content=[TextBlock("hi")])])
        resp = await gw.resolve("local").complete(req, gw.context("local", "req_1", "openai", "local"))
        assert resp.content[0].text == "local answer"
        deadline = time.monotonic() + 20
        while gw.blackboard.exchanges < 2:
            assert time.monotonic() < deadline, "the board never started"
            await asyncio.sleep(0.01)
        r = redis.Redis.from_url(REDIS_URL)
        entry = r.hget(redis_prefix + "replicas", gw.blackboard.replica_id)
        r.close()
        assert entry is not None and b'"local"' in entry
    finally:
        await gw.close()
