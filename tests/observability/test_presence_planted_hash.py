"""A presence record planted as a Redis hash with a huge field (whoever may write the presence keys: a deployment
sharing Redis without a Redis user of its own, a worker process of another kind). A string record above 64 KiB was
listed without being read, but a hash was read whole whenever it had at most 64 fields, whatever their size: every
dashboard poll and scrape past `presence_refresh` pulled it over the wire and decoded it in the gateway. Real HTTP,
a redis-server of the test's own (its byte counters are this test's alone)."""

from __future__ import annotations

import time

import httpx2 as httpx
import redis


def test_a_huge_presence_hash_is_listed_without_being_read(two_tier, own_redis):
    server = own_redis(appendonly=False)
    r = redis.Redis.from_url(server.url)
    prefix = "obs5:"
    r.hset(f"{prefix}presence:default:big", mapping={"capabilities": "code," + "x" * (8 << 20), "status": "online"})
    r.expire(f"{prefix}presence:default:big", 300)
    r.set(f"{prefix}presence:default:small", '{"capabilities": ["code"]}', ex=300)
    r.hset(f"{prefix}presence:default:hash", mapping={"capabilities": "vision,code", "status": "online"})
    g = two_tier(dispatch={"redis_url": server.url, "prefix": prefix},
                 observability={"metrics": {"enabled": True},
                                "dashboard": {"enabled": True, "presence_refresh": 0.05}})
    before = int(r.info("stats")["total_net_output_bytes"])
    seen = []
    for _ in range(3):
        t = httpx.get(g.url + "/dashboard/api/topology", timeout=30)
        assert t.status_code == 200
        seen.append({w["id"]: w["capabilities"] for w in t.json()["workers"]})
        time.sleep(0.1)  # past presence_refresh: the next call reads the list again
    sent = int(r.info("stats")["total_net_output_bytes"]) - before
    assert sent < 1 << 20, f"Redis sent {sent:,} bytes for three reads of the worker list"
    assert seen[-1] == {"default:big": [], "default:hash": ["vision", "code"], "default:small": ["code"]}  # listed, unread; the honest ones whole
    r.close()
