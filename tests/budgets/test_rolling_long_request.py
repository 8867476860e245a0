"""A request that runs longer than a rolling window: its reservation's slot leaves the window while it runs, and its
settlement went into that slot, which no window counts any more. Before (session 30, costs2) such a request's cost was
counted nowhere: a client whose streams outlast a `{rolling: 5m}` window spent without limit. Now a settlement whose
slot has left the window counts the real cost in the current slot.

The gateway's clock is moved on while the request is held at the upstream (the controller's `time`; Redis's own
clock only dates reservation deadlines), so the test need not wait a window out.
"""

from __future__ import annotations

import asyncio
import threading
import time
import types
import uuid

import pytest

from tests.doubles import Delay, Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import drop_redis_keys, redis_up, two_tier_config, unavailable, wait_for
from tierwise.budgets import controller

REDIS_URL = "redis://127.0.0.1:6379/11"
USAGE = (100, 400)
COST = (USAGE[0] * 3 + USAGE[1] * 15) / 1e6


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_request_outlasting_a_rolling_window_is_counted(gateway, openai_up, anthropic_up, monkeypatch,  # noqa: F811
                                                          backend):
    prefix = f"tierwise-test:{uuid.uuid4().hex[:12]}:"
    if backend == "redis" and not redis_up():
        unavailable("no Redis on 127.0.0.1:6379")
    shift = [0.0]
    monkeypatch.setattr(controller, "time", types.SimpleNamespace(time=lambda: time.time() + shift[0],
                                                                  monotonic=time.monotonic))
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    store = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix} if backend == "redis" else {}
    cfg["budgets"] = {"limits": [{"name": "cap", "usd": 1.0, "window": {"rolling": "1m"}}], "store": store}
    try:
        g = gateway(cfg)
        anthropic_up.default = Delay(3, Reply(text="answer " * 50, usage=USAGE))
        done = threading.Event()

        def ask() -> None:
            oai(g).chat.completions.create(model="main", max_tokens=400, messages=[{"role": "user", "content": "q"}])
            done.set()

        t = threading.Thread(target=ask)
        t.start()
        assert wait_for(lambda: len(anthropic_up.requests) == 1)
        shift[0] = 90.0  # the request has run a minute and a half when it ends: its slot left the window
        t.join(30)
        assert done.is_set()

        def used() -> float:
            s = asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)
            if s["reservations_in_flight"]:
                return -1.0
            return s["budgets"][0]["usd_used"] if s["budgets"] else 0.0

        wait_for(lambda: used() >= 0)
        assert used() == pytest.approx(COST), "the request's cost was counted in no open slot"
    finally:
        if backend == "redis":
            drop_redis_keys(REDIS_URL, prefix)
