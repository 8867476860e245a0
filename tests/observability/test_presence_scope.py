"""What the dashboard's worker list reads from Redis (session 34, review34e, obs5's left items): a gateway of one
tenant lists that tenant's workers only, and a presence key *name* of many megabytes planted under the presence
prefix is not carried back by every SCAN. Real HTTP, a redis-server of the test's own (its byte counters are this
test's alone)."""

from __future__ import annotations

import time

import httpx2 as httpx
import orjson
import redis

from tests.observability.conftest import scrape, total

PREFIX = "r34e:"


def test_a_tenants_gateway_lists_and_counts_only_its_own_workers(two_tier, own_redis):
    server = own_redis(appendonly=False)
    r = redis.Redis.from_url(server.url)
    r.set(f"{PREFIX}presence:acme:a1", orjson.dumps({"capabilities": ["code"], "tenant": "acme"}), ex=300)
    r.set(f"{PREFIX}presence:globex:g1", orjson.dumps({"capabilities": ["code", "vision"], "tenant": "globex"}),
          ex=300)
    r.set(f"{PREFIX}presence:globex:g2", orjson.dumps({"capabilities": ["vision"], "tenant": "globex"}), ex=300)
    g = two_tier(dispatch={"redis_url": server.url, "prefix": PREFIX, "tenant": "acme"},
                 observability={"metrics": {"enabled": True}, "dashboard": {"enabled": True}})
    t = httpx.get(g.url + "/dashboard/api/topology", timeout=30)
    assert t.status_code == 200
    ids = [w["id"] for w in t.json()["workers"]]
    assert ids == ["acme:a1"], f"tenant acme's gateway lists {ids}"
    m = scrape(g.url)
    assert total(m, "tierwise_workers_present", capability="code") == 1
    assert total(m, "tierwise_workers_present", capability="vision") == 0
    r.close()


def test_without_a_dispatch_section_the_operators_view_lists_every_tenant(two_tier, own_redis):
    server = own_redis(appendonly=False)
    r = redis.Redis.from_url(server.url)
    r.set("tierwise:presence:acme:a1", orjson.dumps({"capabilities": ["code"]}), ex=300)
    r.set("tierwise:presence:globex:g1", orjson.dumps({"capabilities": ["code"]}), ex=300)
    g = two_tier(observability={"dashboard": {"enabled": True, "presence_redis_url": server.url}})
    ids = [w["id"] for w in httpx.get(g.url + "/dashboard/api/topology", timeout=30).json()["workers"]]
    assert ids == ["acme:a1", "globex:g1"]
    r.close()


def test_a_huge_key_name_under_the_presence_prefix_is_not_sent_by_scan(two_tier, own_redis):
    server = own_redis(appendonly=False)
    r = redis.Redis.from_url(server.url)
    r.set(f"{PREFIX}presence:default:" + "n" * (8 << 20), orjson.dumps({"capabilities": ["code"]}), ex=300)
    r.set(f"{PREFIX}presence:default:w1", orjson.dumps({"capabilities": ["code"]}), ex=300)
    g = two_tier(dispatch={"redis_url": server.url, "prefix": PREFIX},
                 observability={"dashboard": {"enabled": True, "presence_refresh": 0.05}})
    before = int(r.info("stats")["total_net_output_bytes"])
    seen = []
    for _ in range(3):
        t = httpx.get(g.url + "/dashboard/api/topology", timeout=30)
        assert t.status_code == 200
        seen.append([w["id"] for w in t.json()["workers"]])
        time.sleep(0.1)  # past presence_refresh: the next call reads the list again
    sent = int(r.info("stats")["total_net_output_bytes"]) - before
    assert sent < 1 << 20, f"Redis sent {sent:,} bytes for three reads of the worker list"
    assert seen[-1] == ["default:w1"]
    r.close()


def test_a_huge_key_name_under_the_presence_prefix_is_removed_by_the_first_walk(two_tier, own_redis):
    """SCAN copies every name into the script before it is dropped: one planted name of 8 MB cost Redis 37 ms of CPU
    at every walk (every `presence_refresh`) while it lived. No worker can write such a name: the walk removes it
    (session 35, obs6)."""
    server = own_redis(appendonly=False)
    r = redis.Redis.from_url(server.url)
    planted = f"{PREFIX}presence:default:" + "n" * (8 << 20)
    r.set(planted, orjson.dumps({"capabilities": ["code"]}), ex=300)
    r.set(f"{PREFIX}presence:default:w1", orjson.dumps({"capabilities": ["code"]}), ex=300)
    g = two_tier(dispatch={"redis_url": server.url, "prefix": PREFIX},
                 observability={"dashboard": {"enabled": True}})
    t = httpx.get(g.url + "/dashboard/api/topology", timeout=30).json()
    assert [w["id"] for w in t["workers"]] == ["default:w1"]
    assert not r.exists(planted), "the planted name is still there: every walk copies it again"
    assert r.exists(f"{PREFIX}presence:default:w1")
    r.close()


def test_a_redis_user_without_scripting_still_lists_the_workers(two_tier, own_redis):
    """The SCAN script refused (a Redis user without EVAL): the names are filtered after SCAN, the list still read."""
    server = own_redis(appendonly=False)
    r = redis.Redis.from_url(server.url)
    r.execute_command("ACL", "SETUSER", "dash", "on", ">pw", "~*", "+@all", "-eval", "-evalsha", "-script")
    r.set(f"{PREFIX}presence:default:w1", orjson.dumps({"capabilities": ["code"]}), ex=300)
    r.set(f"{PREFIX}presence:default:" + "n" * 4096, orjson.dumps({"capabilities": ["code"]}), ex=300)
    url = f"redis://dash:pw@127.0.0.1:{server.port}/0"
    g = two_tier(dispatch={"redis_url": url, "prefix": PREFIX}, observability={"dashboard": {"enabled": True}})
    t = httpx.get(g.url + "/dashboard/api/topology", timeout=30).json()
    assert t["presence_error"] is None
    assert [w["id"] for w in t["workers"]] == ["default:w1"]
    r.close()


async def test_a_walk_that_never_finishes_is_given_up_and_the_next_one_starts(monkeypatch):
    """A presence source whose read hangs after one good list (a Redis answering a byte at a time inside its socket
    timeout; any `PresenceSource`): the last list was shown for ever with no error, and no walk started again."""
    import asyncio
    from types import SimpleNamespace

    from tierwise.observability import topology

    class Hangs:
        calls = 0

        async def workers(self) -> list[dict]:
            self.calls += 1
            if self.calls == 1:
                return [{"id": "w1", "capabilities": ["code"]}]
            await asyncio.Event().wait()  # never answers
            return []

    monkeypatch.setattr(topology, "WAIT_S", 0.05)
    monkeypatch.setattr(topology, "WALK_S", 0.3)
    source = Hangs()
    topo = topology.Topology(SimpleNamespace(cfg=None), None, source=source, refresh_s=0.01)
    assert [w["id"] for w in await topo.workers()] == ["w1"] and topo.presence_error is None
    await asyncio.sleep(0.02)
    await topo.workers()  # the second walk starts, and hangs: the caller takes the last list after WAIT_S
    assert "slow" in (topo.presence_error or ""), "a hung walk showed the old list as current"
    await asyncio.sleep(0.4)  # past WALK_S
    await topo.workers()
    assert source.calls == 3, f"{source.calls} walks: a hung walk was never given up"
    await topo.close()


def test_a_redis_that_refuses_memory_usage_still_reads_honest_hash_records(two_tier, own_redis):
    """obs5 bounded a hash record by `MEMORY USAGE`: a Redis user without it (an ACL like tierwise's own, a managed
    Redis that disables the command) read every hash record as too big: its capabilities not listed."""
    server = own_redis(appendonly=False)
    r = redis.Redis.from_url(server.url)
    r.execute_command("ACL", "SETUSER", "dash", "on", ">pw", "~*", "+@all", "-memory")
    r.hset(f"{PREFIX}presence:default:hash", mapping={"capabilities": "vision,code", "status": "online"})
    r.hset(f"{PREFIX}presence:default:big", mapping={"capabilities": "code," + "x" * (1 << 20), "status": "online"})
    r.hset(f"{PREFIX}presence:default:bigname", mapping={"n" * (1 << 20): "x", "capabilities": "code"})
    url = f"redis://dash:pw@127.0.0.1:{server.port}/0"
    g = two_tier(dispatch={"redis_url": url, "prefix": PREFIX}, observability={"dashboard": {"enabled": True}})
    before = int(r.info("stats")["total_net_output_bytes"])
    t = httpx.get(g.url + "/dashboard/api/topology", timeout=30).json()
    sent = int(r.info("stats")["total_net_output_bytes"]) - before
    assert {w["id"]: w["capabilities"] for w in t["workers"]} == {
        "default:hash": ["vision", "code"], "default:big": [], "default:bigname": ["code"]}
    assert sent < 256 << 10, f"Redis sent {sent:,} bytes for one read of the worker list"
    r.close()


async def test_no_walk_starts_once_the_topology_is_closing(monkeypatch):
    """A dashboard poll or a scrape arriving while the gateway shuts the topology down (or after) started a new walk
    on the presence client being closed (a connection left open past the loop's end)."""
    import asyncio
    from types import SimpleNamespace

    from tierwise.observability import topology

    class Slow:
        calls = 0

        async def workers(self) -> list[dict]:
            self.calls += 1
            await asyncio.sleep(0.2)
            return []

        async def aclose(self) -> None:
            await asyncio.sleep(0.05)

    monkeypatch.setattr(topology, "WAIT_S", 0.01)
    source = Slow()
    topo = topology.Topology(SimpleNamespace(cfg=None), None, source=source, refresh_s=0.0)
    await topo.workers()  # a walk running
    closing = asyncio.ensure_future(topo.close())
    await asyncio.sleep(0)
    await topo.workers()  # a poll arriving during the shutdown
    await closing
    await topo.workers()  # and after it
    assert source.calls == 1, f"{source.calls} walks: one started on a closing presence source"
