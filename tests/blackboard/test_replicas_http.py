"""Two gateway replicas sharing one real Redis: they agree on the local model's health, share
their circuit breakers, and keep serving when Redis is gone.

Each replica is a full gateway on its own port with its own deployments, statistics and
breakers; only Redis joins them. Waiting is on the replicas' exchange counters (how many times
each published and read the board), never on a clock.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2 as httpx

from tests.blackboard.test_dynamic_http import FAST, SLOW, ask, dynamic_route, first_frontier
from tests.doubles import Fail, Reply
from tests.gateway.conftest import oai
from tests.harness import free_port, two_tier_config


def replica_config(openai_up: Any, anthropic_up: Any, redis_url: str, prefix: str, **kw: Any) -> dict[str, Any]:
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes=kw.pop("routes", None) or dynamic_route(), **kw)
    cfg["blackboard"] = {"enabled": True, "redis_url": redis_url, "key_prefix": prefix, "publish_interval_ms": 20}
    return cfg


def synced(*replicas: Any, redis_down: bool = False) -> None:
    """Wait until what each replica knows now has reached the ones after it: in turn, each finishes
    two more exchanges with Redis (the second one began after this call, so it published the
    current state and read what the replicas before it published). Only exchanges that reached
    Redis count (on a loaded machine one may time out, and it carried nothing) unless Redis is down."""
    deadline = time.monotonic() + 20
    for g in replicas:
        board = g.gateway.blackboard
        count = (lambda b: b.exchanges) if redis_down else (lambda b: b.shared)
        target = count(board) + 2
        while count(board) < target:
            assert time.monotonic() < deadline, "a replica stopped exchanging with Redis"
            time.sleep(0.005)


def test_two_replicas_agree(gateway, openai_up, anthropic_up, redis_prefix):
    from tests.blackboard.conftest import REDIS_URL as URL

    openai_up.default, anthropic_up.default = FAST, Reply(text="frontier answer")
    a = gateway(replica_config(openai_up, anthropic_up, URL, redis_prefix))
    b = gateway(replica_config(openai_up, anthropic_up, URL, redis_prefix))
    synced(a, b)
    assert a.gateway.blackboard.replicas == 1 and b.gateway.blackboard.replicas == 1  # each sees the other

    assert [ask(a) for _ in range(2)] == ["local answer"] * 2
    openai_up.default = SLOW
    n = first_frontier(a, 6)  # traffic through A only makes the local model slow
    assert n is not None and n <= 3, n
    synced(a, b)
    # B has never called the local model, yet its board shows it slow: its first request goes to the frontier.
    local_calls = len(openai_up.requests)
    assert ask(b) == "frontier answer" and len(openai_up.requests) == local_calls
    b_route = b.gateway.resolve("auto")
    assert b_route.state == "frontier"
    seen = httpx.get(b.url + "/v1/tierwise/blackboard").json()  # what an operator sees on B
    assert seen["replicas"] == 2 and seen["routes"]["auto"]["state"] == "frontier"
    assert seen["models"]["local"]["latency_ms"] > 300 and seen["models"]["local"]["samples"] >= 2

    openai_up.default = FAST
    answers = []
    while a.gateway.resolve("auto").state != "local" and len(answers) < 12:
        answers.append(ask(a))  # A's probes see it fast again; A comes back
    assert answers[-1] == "local answer" and a.gateway.resolve("auto").state == "local", answers
    synced(a, b)
    assert ask(b) == "local answer" and b_route.state == "local"  # ... and so does B


def test_breaker_opened_on_one_replica_is_open_on_the_other(gateway, openai_up, anthropic_up, redis_prefix):
    from tests.blackboard.conftest import REDIS_URL as URL

    routes = {"main": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0}}
    openai_up.default, anthropic_up.default = Fail(500, "local down"), Reply(text="frontier answer")
    kw = {"routes": routes, "breaker": {"failures": 2, "cooldown": 60}}
    a = gateway(replica_config(openai_up, anthropic_up, URL, redis_prefix, **kw))
    b = gateway(replica_config(openai_up, anthropic_up, URL, redis_prefix, **kw))
    for _ in range(2):
        assert ask_main(a) == "frontier answer"
    assert a.gateway.deployments["local"].breaker.state == "open"
    synced(a, b)
    assert b.gateway.deployments["local"].breaker.state == "open"
    calls = len(openai_up.requests)
    assert ask_main(b) == "frontier answer" and len(openai_up.requests) == calls  # B skipped local at once

    # A's probe succeeds (the local server is back): closed on A, then on B.
    openai_up.default = Reply(text="local answer")
    a.loop.call_soon_threadsafe(a.gateway.deployments["local"].breaker.success)
    synced(a, b)
    assert b.gateway.deployments["local"].breaker.state == "closed"
    assert ask_main(b) == "local answer"


def test_a_429_pause_on_one_replica_holds_the_other(gateway, openai_up, anthropic_up, redis_prefix):
    """small26: a 429 holds a deployment for its Retry-After (providers/breaker.py), but only on the replica that
    heard it: the others kept calling the rate-limited upstream, each earning its own 429. The hold is shared as
    breaker states are, for what is left of it."""
    from tests.blackboard.conftest import REDIS_URL as URL

    routes = {"main": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0}}
    openai_up.default, anthropic_up.default = Fail(429, retry_after=40), Reply(text="frontier answer")
    kw = {"routes": routes, "breaker": {"failures": 2, "cooldown": 60}}
    a = gateway(replica_config(openai_up, anthropic_up, URL, redis_prefix, **kw))
    b = gateway(replica_config(openai_up, anthropic_up, URL, redis_prefix, **kw))
    assert ask_main(a) == "frontier answer"
    assert a.gateway.deployments["local"].breaker.held_for() > 30
    synced(a, b)
    held = b.gateway.deployments["local"].breaker.held_for()
    assert 0 < held <= 40 and b.gateway.deployments["local"].breaker.state == "closed"  # paused, not opened
    calls = len(openai_up.requests)
    assert ask_main(b) == "frontier answer" and len(openai_up.requests) == calls  # B skipped local at once


def ask_main(g: Any) -> str:
    r = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}], max_tokens=20)
    return r.choices[0].message.content or ""


def test_redis_unreachable_requests_still_served(gateway, openai_up, anthropic_up, caplog):
    """No Redis at all: the replica routes on its own statistics, warns loudly, fails nothing."""
    openai_up.default, anthropic_up.default = FAST, Reply(text="frontier answer")
    caplog.set_level(logging.WARNING, logger="tierwise.blackboard")
    g = gateway(replica_config(openai_up, anthropic_up, f"redis://127.0.0.1:{free_port()}/0", "tw-test:"))
    assert ask(g) == "local answer"
    board = g.gateway.blackboard
    assert board.degraded is not None and "Redis unavailable" in board.degraded
    assert any("REDIS UNAVAILABLE" in r.getMessage() for r in caplog.records)
    openai_up.default = SLOW
    n = first_frontier(g, 6)  # its own statistics still move the route
    assert n is not None and n <= 3, n


def test_redis_dies_and_comes_back(gateway, openai_up, anthropic_up, own_redis):
    private_redis = own_redis(appendonly=False)
    openai_up.default, anthropic_up.default = FAST, Reply(text="frontier answer")
    a = gateway(replica_config(openai_up, anthropic_up, private_redis.url, "tw-test:"))
    b = gateway(replica_config(openai_up, anthropic_up, private_redis.url, "tw-test:"))
    synced(a, b)
    assert a.gateway.blackboard.replicas == 1
    private_redis.stop()
    synced(a, b, redis_down=True)
    assert a.gateway.blackboard.degraded is not None and a.gateway.blackboard.replicas == 0
    assert [ask(a) for _ in range(3)] == ["local answer"] * 3  # served on A's own statistics
    private_redis.start()
    synced(a, b)
    assert a.gateway.blackboard.degraded is None and a.gateway.blackboard.replicas == 1


def board_of(url: str) -> dict[str, Any]:
    return dict(httpx.get(url + "/v1/tierwise/blackboard", timeout=5).json())


def wait_board(url: str, until: Any, what: str) -> dict[str, Any]:
    """Poll a replica's blackboard endpoint until `until(view)` (a wait for the background
    exchange, not a measurement: the bound only stops a broken run)."""
    deadline = time.monotonic() + 30
    while True:
        view = board_of(url)
        if until(view):
            return view
        assert time.monotonic() < deadline, f"{what}; last view {view}"
        time.sleep(0.02)


def test_two_serve_processes_agree(tmp_path, openai_up, anthropic_up, redis_prefix):
    """The same, with two real `tierwise serve` processes: only Redis joins them."""
    import yaml

    from tests.blackboard.conftest import REDIS_URL as URL
    from tests.budgets.test_race import Serve

    openai_up.default, anthropic_up.default = FAST, Reply(text="frontier answer")
    def serve(port: int) -> Serve:
        cfg = replica_config(openai_up, anthropic_up, URL, redis_prefix)
        cfg["server"]["port"] = port
        cfg["ledger"] = {"enabled": False}
        return Serve(yaml.safe_dump(cfg), port, tmp_path)

    procs: list[Serve] = []
    try:
        with ThreadPoolExecutor(2) as pool:  # both start at once: half the wait
            futures = [pool.submit(serve, free_port()) for _ in range(2)]
        procs = [f.result() for f in futures if f.exception() is None]  # stopped below even if one failed
        a, b = [f.result() for f in futures]
        wait_board(b.url, lambda v: v["replicas"] == 2, "B never saw A on the board")
        assert [ask(a) for _ in range(2)] == ["local answer"] * 2
        openai_up.default = SLOW
        n = first_frontier(a, 6)
        assert n is not None and n <= 3, n
        wait_board(b.url, lambda v: (v["models"]["local"]["latency_ms"] or 0) > 300, "B never saw local slow")
        calls = len(openai_up.requests)
        assert ask(b) == "frontier answer" and len(openai_up.requests) == calls  # B: straight to the frontier
        assert board_of(b.url)["routes"]["auto"]["state"] == "frontier"

        openai_up.default = FAST
        for _ in range(12):
            if board_of(a.url)["routes"]["auto"]["state"] == "local":
                break
            ask(a)
        assert board_of(a.url)["routes"]["auto"]["state"] == "local"
        wait_board(b.url, lambda v: v["models"]["local"]["latency_ms"] < 240, "B never saw local recover")
        assert ask(b) == "local answer" and board_of(b.url)["routes"]["auto"]["state"] == "local"
    finally:
        for p in procs:
            p.stop()
