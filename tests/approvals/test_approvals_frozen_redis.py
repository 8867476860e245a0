"""A Redis that freezes while a gated request opens its record leaves no phantom pending request.

The opening script can run after the gateway gave up on it (Redis frozen, then thawed; or its reply lost):
the request got 503, but its record stayed pending, listed to approvers and counted against the route's
`max_pending` until its deadline, so later requests were refused (429) for the route's whole timeout.
"""

from __future__ import annotations

import os
import signal
import time

import openai
import pytest

from tests.gateway.conftest import oai
from tests.harness import two_tier_config, wait_for

from .conftest import ADMIN, admin_get

MSG = [{"role": "user", "content": "deploy to production"}]


def test_a_record_opened_while_redis_froze_is_withdrawn(gateway, openai_up, anthropic_up, own_redis, monkeypatch):
    monkeypatch.setenv("TW_ADMIN", ADMIN)
    server = own_redis(appendonly=False)
    cfg = two_tier_config(openai_up.url, anthropic_up.url, server={"default_route": "main", "admin_keys_env": ["TW_ADMIN"]},
                          approvals={"store": {"backend": "redis", "redis_url": server.url, "recheck": 600},
                                     "routes": {"main": {"timeout": "10m", "max_pending": 1}}})
    g = gateway(cfg)
    with pytest.raises(openai.APITimeoutError):  # the opening script loaded and a connection pooled, as under traffic
        oai(g, timeout=1).chat.completions.create(model="main", messages=MSG)
    assert wait_for(lambda: admin_get(g.url).json()["pending"] == [], 10)  # the client left: its record cancelled
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        with pytest.raises(openai.InternalServerError) as e:
            oai(g).chat.completions.create(model="main", messages=MSG)
        assert e.value.status_code == 503 and "approval store is unavailable" in e.value.message
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    time.sleep(0.5)  # Redis runs what it received while frozen
    # Nothing waits for that request: it is not pending, and the route's one place is free.
    assert wait_for(lambda: admin_get(g.url).json()["pending"] == [], 10), admin_get(g.url).json()
    with pytest.raises(openai.APITimeoutError):  # waits for a decision (before: 429 at once, the place taken)
        oai(g, timeout=2).chat.completions.create(model="main", messages=MSG)
