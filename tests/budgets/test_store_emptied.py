"""A budget store whose Redis comes back empty (a restart without persistence, a failover to an empty replica, an
operator's FLUSHDB) forgot the day's spend: every gateway then spent the whole cap again.

Now the store keeps an epoch key; a gateway that finds it gone or changed adds back what it settled itself in the
windows still open, once per epoch, before its next admission or settlement is decided. Two gateways (each its
own store, as two processes have) share one budget; the prefix's keys are deleted between the two halves (what a
restart without AOF leaves: nothing).
"""

from __future__ import annotations

import asyncio
import time

import openai
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import drop_redis_keys, own_keys, redis_up, two_tier_config, unavailable, wait_for

REDIS_URL = "redis://127.0.0.1:6379/10"
USAGE = (100, 400)
COST = (USAGE[0] * 3 + USAGE[1] * 15) / 1e6  # $0.0063 per answer
LIMIT = 0.05  # eight answers


@pytest.fixture
def prefix():
    if not redis_up():
        unavailable("no Redis on 127.0.0.1:6379")
    yield from own_keys(REDIS_URL, "tierwise-test:")


def _config(openai_up, anthropic_up, prefix: str, **limit) -> dict:  # noqa: F811
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["budgets"] = {"limits": [{"name": "cap", "usd": LIMIT, **limit}],
                      "store": {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix}}
    return cfg


def _used(g) -> float:
    def status() -> dict:
        return asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)

    wait_for(lambda: status()["reservations_in_flight"] == 0)
    return next(r for r in status()["budgets"] if r["budget"] == "cap")["usd_used"]


def _spend(clients, n: int) -> int:
    """Up to `n` requests round robin over the gateways' clients; how many were answered."""
    ok = 0
    for i in range(n):
        try:
            clients[i % len(clients)].chat.completions.create(
                model="main", max_tokens=400, messages=[{"role": "user", "content": f"question {i}"}])
            ok += 1
        except openai.RateLimitError:
            pass
    return ok


@pytest.mark.parametrize("window", ["day", {"rolling": "1h"}])
def test_a_redis_that_comes_back_empty_does_not_spend_the_budget_again(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                       prefix, window):
    anthropic_up.default = Reply(text="answer " * 50, usage=USAGE)
    cfg = _config(openai_up, anthropic_up, prefix, window=window)
    gs = [gateway(cfg), gateway(cfg)]
    clients = [oai(g) for g in gs]
    first = _spend(clients, 20)
    assert first == 8 and _used(gs[0]) == pytest.approx(8 * COST)
    drop_redis_keys(REDIS_URL, prefix)  # Redis restarted without its data
    # Each gateway adds back its share on its next call, or when it next looks at the epoch (about once a second)
    wait_for(lambda: _used(gs[0]) == pytest.approx(8 * COST))
    second = _spend(clients, 20)
    paid = len(anthropic_up.requests) * COST
    # Before: 8 more answered ($0.1008 paid of a $0.05 budget), the status saying $0.0504 used.
    assert second == 0, f"{second} more answered after the store came back empty: ${paid:.4f} of ${LIMIT}"
    assert _used(gs[1]) == pytest.approx(8 * COST)


def test_a_gateway_restores_its_share_once_per_emptying(gateway, openai_up, anthropic_up, prefix):  # noqa: F811
    anthropic_up.default = Reply(text="answer " * 50, usage=USAGE)
    cfg = _config(openai_up, anthropic_up, prefix)
    gs = [gateway(cfg), gateway(cfg)]
    clients = [oai(g) for g in gs]
    assert _spend(clients, 4) == 4
    for _ in range(2):  # emptied twice: each time both gateways' settled spend comes back, once
        drop_redis_keys(REDIS_URL, prefix)
        assert _spend(clients, 2) == 2  # (the first calls find the store empty: each adds back its own share)
    assert _used(gs[0]) == pytest.approx(8 * COST)
    assert _spend(clients, 4) == 0


def test_a_gateway_that_gets_no_request_adds_back_its_share(gateway, openai_up, anthropic_up, prefix):  # noqa: F811
    anthropic_up.default = Reply(text="answer " * 50, usage=USAGE)
    cfg = _config(openai_up, anthropic_up, prefix)
    busy, idle = gateway(cfg), gateway(cfg)
    assert _spend([oai(idle)], 6) == 6
    drop_redis_keys(REDIS_URL, prefix)
    wait_for(lambda: _used(busy) == pytest.approx(6 * COST))  # the idle one's share is back without a request
    assert _spend([oai(busy)], 10) == 2


@pytest.mark.parametrize("first", ["watcher", "request"])
def test_an_epoch_key_lost_alone_does_not_count_the_spend_twice(gateway, openai_up, anthropic_up, prefix,  # noqa: F811
                                                                first):
    """The epoch key gone while the counters stay (evicted alone under an `allkeys-*` maxmemory policy, deleted by
    hand): before (session 29, review29c) every gateway added its settled spend back on top of the counters that
    still held it, and the budget read twice what was spent (its key refused early). `first`: who finds the key
    gone first, a gateway's look at the epoch (about once a second) or its next call."""
    import redis

    anthropic_up.default = Reply(text="answer " * 50, usage=USAGE)
    cfg = _config(openai_up, anthropic_up, prefix)
    gs = [gateway(cfg), gateway(cfg)]
    clients = [oai(g) for g in gs]
    assert _spend(clients, 4) == 4
    r = redis.Redis.from_url(REDIS_URL)
    try:
        assert wait_for(lambda: r.exists(prefix + "epoch"))
        epoch = r.get(prefix + "epoch")
        assert r.delete(prefix + "epoch") == 1
        if first == "watcher":
            assert wait_for(lambda: r.exists(prefix + "epoch"))
        assert _spend(clients, 2) == 2
        wait_for(lambda: _used(gs[0]) > 6.5 * COST, timeout=3)  # (a restore would show within a look or two)
        assert _used(gs[1]) == pytest.approx(6 * COST)
        assert r.get(prefix + "epoch") == epoch  # nothing was lost: the same epoch, no gateway restores
    finally:
        r.close()
    assert _spend(clients, 4) == 2  # eight answers in all, as without the loss (before: none more)


def test_a_dead_gateways_share_comes_back_with_the_live_ones(gateway, openai_up, anthropic_up, prefix):  # noqa: F811
    """Three gateways share the budget; one stops (killed, scaled down) after it spent its share; then Redis comes
    back empty. Before (session 30, costs2) each live gateway added back only what it had settled itself: the dead
    one's share was lost (6 answers counted as 4, and 4 more answered: 10 of a budget of 8). Now every gateway mirrors
    the settled spend of every counter (sampled about once a second) and the largest offer per counter is added
    back, once."""
    anthropic_up.default = Reply(text="answer " * 50, usage=USAGE)
    cfg = _config(openai_up, anthropic_up, prefix)
    gs = [gateway(cfg), gateway(cfg), gateway(cfg)]
    clients = [oai(g) for g in gs]
    assert _spend(clients, 6) == 6  # two each; the third's answers come last
    assert _used(gs[0]) == pytest.approx(6 * COST)

    def mirrored(g) -> float:  # what a gateway would offer back (its looks at the store: about once a second)
        return sum(c[0] + sum(m[1] for m in c[4]) for c in list(g.gateway.spend.store.mirror.counters.values()))

    assert wait_for(lambda: all(mirrored(g) == pytest.approx(6 * COST) for g in gs[:2]), timeout=30)
    gs[2].stop()
    drop_redis_keys(REDIS_URL, prefix)  # Redis restarted without its data
    # (the live ones add back at their next look; before, they added back 4 answers' worth)
    assert wait_for(lambda: _used(gs[0]) == pytest.approx(6 * COST), timeout=30), "the dead gateway's share was lost"
    time.sleep(1.5)  # (a second look by each: nothing more is added)
    assert _used(gs[1]) == pytest.approx(6 * COST)
    assert _spend(clients[:2], 10) == 2
    assert _used(gs[0]) == pytest.approx(8 * COST)


def test_reservations_in_flight_are_held_again_after_the_store_comes_back_empty(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                              prefix):
    """Two long requests in flight fill an `admit: fits` budget; Redis comes back empty meanwhile. Before (session 30,
    costs2) their reservations were gone with it: a third request was admitted while both still ran ($0.77 billed of
    $0.60, 1.28x). Now the gateway holds the reservations of its requests in flight again when it adds back its share."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.doubles import Delay

    cfg = _config(openai_up, anthropic_up, prefix)
    cfg["budgets"]["admit"] = "fits"
    cfg["budgets"]["limits"][0]["usd"] = 0.6
    g = gateway(cfg)
    doc = "word " * 50_000  # 250,000 bytes: about 83,000 tokens, $0.25 at $3 per million, reserved
    billed = (83_000 * 3 + 400 * 15) / 1e6
    anthropic_up.default = Delay(4, Reply(text="answer " * 50, usage=(83_000, 400)))

    def ask() -> str:
        try:
            oai(g).chat.completions.create(model="main", max_tokens=400, messages=[{"role": "user", "content": doc}])
            return "ok"
        except openai.RateLimitError:
            return "429"

    with ThreadPoolExecutor(3) as pool:
        held = [pool.submit(ask), pool.submit(ask)]
        assert wait_for(lambda: len(anthropic_up.requests) == 2)
        drop_redis_keys(REDIS_URL, prefix)  # Redis restarted without its data while both run
        third = pool.submit(ask).result()
        assert [f.result() for f in held] == ["ok", "ok"]
    assert third == "429", f"admitted past the budget: ${3 * billed:.2f} billed of $0.60"
    assert _used(g) == pytest.approx(2 * billed)


def test_a_new_gateway_waits_for_the_live_ones_on_an_emptied_store(gateway, openai_up, anthropic_up, prefix,  # noqa: F811
                                                                  monkeypatch):
    """A gateway that never called the store, started just after it came back empty, admitted on its empty counters
    until the live gateways' next look added their spend back (about a second; slowed to 3 s here so the test sees
    it): the cap spent again (session 31's leftover). Now its first call on an empty store waits for the first of
    them to add back when there is a sign of them: their connections, which their looks name."""
    import redis

    monkeypatch.setattr("tierwise.budgets.store_redis.WATCH_EVERY", 3.0)
    anthropic_up.default = Reply(text="answer " * 50, usage=USAGE)
    cfg = _config(openai_up, anthropic_up, prefix)
    live = gateway(cfg)
    assert _spend([oai(live)], 20) == 8
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    names = live.gateway.spend.store.names  # (its own: another gateway on the same Redis, any database, is listed too)
    try:  # (right after a look of the live gateway: the next one is 3 s away)
        wait_for(lambda: any(str(c.get("name")).startswith(names) for c in r.client_list()), timeout=5)
    finally:
        r.close()
    drop_redis_keys(REDIS_URL, prefix)  # Redis flushed
    new = gateway(cfg)
    more = _spend([oai(new)], 4)
    paid = len(anthropic_up.requests) * COST
    # Before: 4 more answered ($0.0756 paid of a $0.05 budget)
    assert more == 0, f"{more} answered by the new gateway: ${paid:.4f} paid of ${LIMIT}"
    assert _used(new) == pytest.approx(8 * COST)
