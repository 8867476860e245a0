"""`tierwise_workers_present` follows the workers' presence: a capability whose workers stopped reads 0 (it kept
the last count for ever), and capability names past the label cap add up under `other` (the last one won)."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
import redis

from tests.observability.conftest import scrape, total
from tierwise.observability import topology

REDIS_URL = "redis://127.0.0.1:6379/9"  # (db 9: this file's own keys, under a prefix of its own)
# The gateways here reuse the presence list for 0.05 s, not the default 0.5 (`presence_refresh`): the same reads,
# ten times as often, so the waits below for a list to go stale are short (the several-process test makes 24).
REFRESH_S = 0.05
DASHBOARD = {"presence_redis_url": REDIS_URL, "presence_refresh": REFRESH_S}


@pytest.fixture
def presence():
    r = redis.Redis.from_url(REDIS_URL)
    prefix = f"tierwise-test-{uuid.uuid4().hex[:12]}:"
    yield r, prefix
    for k in r.scan_iter(match=prefix + "*"):
        r.delete(k)
    r.close()


def _scrape_after_cache(url: str) -> dict:
    time.sleep(REFRESH_S + 0.1)  # the presence list is read at most every REFRESH_S
    return scrape(url)


def test_a_capability_whose_workers_left_reads_zero(two_tier, presence):
    r, prefix = presence
    r.set(f"{prefix}presence:default:w1", orjson.dumps({"capabilities": ["code", "vision"]}), ex=60)
    r.set(f"{prefix}presence:default:w2", orjson.dumps({"capabilities": ["code"]}), ex=60)
    g = two_tier(dispatch={"redis_url": REDIS_URL, "prefix": prefix},
                 observability={"metrics": {"enabled": True}, "dashboard": DASHBOARD})
    m = scrape(g.url)
    assert total(m, "tierwise_workers_present", capability="code") == 2
    assert total(m, "tierwise_workers_present", capability="vision") == 1
    r.delete(f"{prefix}presence:default:w1")  # w1 stops (its presence key expires)
    m = _scrape_after_cache(g.url)
    assert total(m, "tierwise_workers_present", capability="code") == 1
    assert total(m, "tierwise_workers_present", capability="vision") == 0
    r.delete(f"{prefix}presence:default:w2")
    m = _scrape_after_cache(g.url)
    assert total(m, "tierwise_workers_present", capability="code") == 0


def test_the_presence_list_is_reused_for_presence_refresh_seconds(two_tier, presence):
    """`dashboard.presence_refresh` sets how long the list read from Redis is reused (the tests above set it short to
    wait less): at a minute, a worker that left still counts a default refresh later."""
    r, prefix = presence
    r.set(f"{prefix}presence:default:w1", orjson.dumps({"capabilities": ["code"]}), ex=60)
    g = two_tier(dispatch={"redis_url": REDIS_URL, "prefix": prefix},
                 observability={"metrics": {"enabled": True},
                                "dashboard": {"presence_redis_url": REDIS_URL, "presence_refresh": 60}})
    assert total(scrape(g.url), "tierwise_workers_present", capability="code") == 1
    r.delete(f"{prefix}presence:default:w1")
    time.sleep(topology.CACHE_S + 0.1)  # past the default refresh: the list is read again only without the setting
    assert total(scrape(g.url), "tierwise_workers_present", capability="code") == 1


def test_capabilities_past_the_label_cap_add_up_under_other(two_tier, presence):
    r, prefix = presence
    for w in range(3):
        r.set(f"{prefix}presence:default:w{w}", orjson.dumps({"capabilities": [f"cap{w}"]}), ex=60)
    g = two_tier(dispatch={"redis_url": REDIS_URL, "prefix": prefix},
                 observability={"metrics": {"enabled": True, "max_label_values": 1},
                                "dashboard": DASHBOARD})
    m = scrape(g.url)
    assert total(m, "tierwise_workers_present") == 3  # one named, two under `other`
    assert total(m, "tierwise_workers_present", capability="other") == 2


def test_with_several_gateway_processes_a_gone_capability_reads_zero_whichever_answers(tmp_path, openai_up,
                                                                                        anthropic_up, presence):
    """`serve --workers 2`: the gauge is the most recent value any process set (`livemostrecent`). A process that
    never saw a capability did not zero it, so a scrape it answered showed the other process's last count for as
    long as that one answered no scrape (review30a)."""
    from tests.harness import two_tier_config
    from tests.observability.conftest import serve_processes

    r, prefix = presence
    cfg = two_tier_config(openai_up.url, anthropic_up.url, observability={
        "metrics": {"enabled": True}, "dashboard": DASHBOARD})
    cfg["dispatch"] = {"redis_url": REDIS_URL, "prefix": prefix}
    proc, url = serve_processes(tmp_path, cfg)
    try:
        for i in range(8):  # each scrape lands on either process (a new connection each): one sees the workers come
            r.set(f"{prefix}presence:default:w{i}", orjson.dumps({"capabilities": [f"cap{i}"]}), ex=60)
            assert total(_scrape_after_cache(url), "tierwise_workers_present", capability=f"cap{i}") == 1
            r.delete(f"{prefix}presence:default:w{i}")  # and go
            for _ in range(2):
                m = _scrape_after_cache(url)
                assert total(m, "tierwise_workers_present", capability=f"cap{i}") == 0, (i, m)
    finally:
        proc.terminate()
        proc.communicate(timeout=40)
