"""SQLite and Redis backends: shared by gateway processes, bounded, and managed by `tierwise cache`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.cache.helpers import Q, cached_config, oai_call
from tests.gateway.conftest import oai
from tests.harness import needs_redis, own_keys

REDIS_URL = "redis://127.0.0.1:6379/0"




@pytest.fixture
def prefix():
    yield from own_keys(REDIS_URL, "tw-test-cache-")


@needs_redis
def test_redis_backend_shared_by_two_gateway_processes(tmp_path, openai_up, anthropic_up, prefix):
    """Two separate `tierwise serve` processes on one Redis: an answer one stored is a hit on the other."""
    from tests.harness import free_port

    cfg = cached_config(openai_up.url, anthropic_up.url, cache={"backend": "redis", "redis_url": REDIS_URL,
                                                                 "redis_prefix": prefix})
    cfg["ledger"] = {"enabled": False}
    procs, urls = [], []
    try:
        for i in range(2):
            d = tmp_path / f"g{i}"
            d.mkdir()
            (d / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
            port = free_port()
            procs.append(subprocess.Popen([sys.executable, "-m", "tierwise.cli", "serve", "-c", str(d / "tierwise.yaml"),
                                           "--port", str(port)], cwd=d, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": _src()}))
            urls.append(f"http://127.0.0.1:{port}")
        import httpx2 as httpx

        for u in urls:
            _wait(u, httpx)

        class G:
            def __init__(self, url: str) -> None:
                self.url = url

        assert oai_call(oai(G(urls[0])))[1] == "miss"
        _, h = oai_call(oai(G(urls[1])))
        assert h == "hit"
        assert len(openai_up.requests) == 1
        # another route, another scope: never each other's
        assert oai_call(oai(G(urls[1])), model="main", max_tokens=5)[1] == "miss"
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


def _src() -> str:
    return str(Path(__file__).resolve().parents[2] / "src")


def _wait(url: str, httpx) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"gateway at {url} did not start")


@needs_redis
def test_redis_invalidate_and_clear_from_the_cli(tmp_path, gateway, openai_up, anthropic_up, prefix):
    cfg = cached_config(openai_up.url, anthropic_up.url, cache={"backend": "redis", "redis_url": REDIS_URL,
                                                                 "redis_prefix": prefix})
    g = gateway(cfg)
    oai_call(oai(g))
    oai_call(oai(g), model="main", max_tokens=5)
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(cfg))
    from tierwise.commands.cache import command

    r = CliRunner().invoke(command, ["stats", "-c", str(path)])
    assert r.exit_code == 0 and "entries: 2" in r.output
    r = CliRunner().invoke(command, ["invalidate", "-c", str(path), "--route", "loc"])
    assert r.exit_code == 0 and "dropped 1 entry" in r.output
    assert oai_call(oai(g))[1] == "miss"
    assert oai_call(oai(g), model="main", max_tokens=5)[1] == "hit"
    r = CliRunner().invoke(command, ["clear", "-c", str(path)])
    assert "dropped 2 entries" in r.output
    assert oai_call(oai(g), model="main", max_tokens=5)[1] == "miss"


def test_redis_down_means_uncached_not_failed(gateway, openai_up, anthropic_up):
    from tests.harness import free_port

    g = gateway(cached_config(openai_up.url, anthropic_up.url, cache={
        "backend": "redis", "redis_url": f"redis://127.0.0.1:{free_port()}/0", "redis_timeout": 0.2}))
    a, h = oai_call(oai(g))
    assert a.choices[0].message.content == "ok" and h == "miss"
    assert oai_call(oai(g))[1] == "miss"


def test_sqlite_backend_survives_a_restart_and_cli(tmp_path, gateway, openai_up, anthropic_up):
    cfg = cached_config(openai_up.url, anthropic_up.url, cache={"backend": "sqlite",
                                                                 "sqlite_path": str(tmp_path / "c.db")})
    g = gateway(cfg)
    assert oai_call(oai(g))[1] == "miss"
    g.stop()
    g2 = gateway(cfg)
    assert oai_call(oai(g2))[1] == "hit"
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(cfg))
    from tierwise.commands.cache import command

    r = CliRunner().invoke(command, ["invalidate", "-c", str(path), "--tenant", ""])
    assert "dropped 1 entry" in r.output, r.output
    assert oai_call(oai(g2), messages=Q)[1] == "miss"


def test_sqlite_bounded_by_bytes(tmp_path):
    from tierwise.cache.backends import SqliteStore

    s = SqliteStore(str(tmp_path / "b.db"), max_bytes=10_000)
    for i in range(50):
        s.put(f"k{i}", b"x" * 1000, 60, "r", "t")
    st = s.stats()
    assert st["bytes"] <= 10_000 and st["entries"] < 50
    assert s.get("k49") is not None and s.get("k0") is None


def test_memory_backend_from_the_cli_through_the_gateway(tmp_path, gateway, openai_up, anthropic_up):
    """The memory backend lives in the gateway: `tierwise cache` reaches it through the admin routes,
    like the sqlite and redis backends directly."""
    cfg = cached_config(openai_up.url, anthropic_up.url)
    g = gateway(cfg)
    oai_call(oai(g))
    oai_call(oai(g), model="main", max_tokens=5)
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(cfg))
    from tierwise.commands.cache import command

    r = CliRunner().invoke(command, ["stats", "-c", str(path), "--url", g.url])
    assert r.exit_code == 0 and "entries: 2" in r.output and "backend: memory" in r.output, r.output
    r = CliRunner().invoke(command, ["invalidate", "-c", str(path), "--url", g.url, "--route", "loc"])
    assert r.exit_code == 0 and "dropped 1 entry" in r.output, r.output
    assert oai_call(oai(g))[1] == "miss"
    assert oai_call(oai(g), model="main", max_tokens=5)[1] == "hit"
    r = CliRunner().invoke(command, ["clear", "-c", str(path), "--url", g.url])
    assert "dropped 2 entries" in r.output
    assert oai_call(oai(g), model="main", max_tokens=5)[1] == "miss"
    g.stop()
    r = CliRunner().invoke(command, ["stats", "-c", str(path), "--url", g.url])
    assert r.exit_code != 0 and "cannot reach the gateway" in r.output


def test_cache_admin_routes_keep_a_key_to_its_own_tenant(monkeypatch, tmp_path, gateway, openai_up, anthropic_up):
    """A gateway key drops only its own tenant's entries and reads no statistics (they count every
    tenant's traffic: an admin's or a viewer's, server/roles.py); an admin key reads them and drops any
    tenant's entries, also through `tierwise cache`; a viewer key changes nothing."""
    import httpx2 as httpx

    monkeypatch.setenv("TW_ADM_A", "adm-key-a")
    monkeypatch.setenv("TW_ADM_B", "adm-key-b")
    monkeypatch.setenv("TW_ADMIN", "the-admin-key")
    monkeypatch.setenv("TW_VIEW", "the-viewer-key")
    cfg = cached_config(openai_up.url, anthropic_up.url)
    cfg["server"]["api_keys_env"] = [{"env": "TW_ADM_A", "tenant": "a"}, {"env": "TW_ADM_B", "tenant": "b"}]
    cfg["server"]["admin_keys_env"] = ["TW_ADMIN"]
    cfg["observability"] = {"dashboard": {"viewer_keys_env": ["TW_VIEW"]}}
    g = gateway(cfg)
    a, b = oai(g, api_key="adm-key-a"), oai(g, api_key="adm-key-b")
    assert oai_call(a)[1] == "miss" and oai_call(b)[1] == "miss"

    def post(key: str | None, body: object) -> httpx.Response:
        h = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.post(g.url + "/v1/tierwise/cache/invalidate", json=body, headers=h)

    assert post(None, {}).status_code == 401
    assert httpx.get(g.url + "/v1/tierwise/cache").status_code == 401
    r = post("adm-key-a", {"tenant": "b"})
    assert r.status_code == 400 and "own tenant" in r.json()["error"]["message"]
    assert post("adm-key-a", {"route": 5}).status_code == 400
    assert post("adm-key-a", {"everything": True}).status_code == 400
    assert post("adm-key-a", [1]).status_code == 400
    r = httpx.get(g.url + "/v1/tierwise/cache", headers={"authorization": "Bearer adm-key-a"})
    assert r.status_code == 403 and "admin" in r.json()["error"]["message"] and "entries" not in r.text
    for key in ("the-admin-key", "the-viewer-key"):
        st = httpx.get(g.url + "/v1/tierwise/cache", headers={"authorization": f"Bearer {key}"}).json()
        assert st["entries"] == 2 and st["miss"] == 2, key
    r = post("the-viewer-key", {})
    assert r.status_code == 403 and "viewer" in r.json()["error"]["message"]
    r = post("adm-key-a", {})  # all of its own tenant's entries, nobody else's
    assert r.status_code == 200 and r.json()["dropped"] == 1 and r.json()["tenant"] == "a"
    assert oai_call(a)[1] == "miss" and oai_call(b)[1] == "hit"
    r = post("the-admin-key", {"tenant": "b"})  # the operator drops any tenant's entries
    assert r.status_code == 200 and r.json()["dropped"] == 1
    assert oai_call(b)[1] == "miss"
    # `tierwise cache` asks with the config's admin key
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(cfg))
    from tierwise.commands.cache import command

    out = CliRunner().invoke(command, ["stats", "-c", str(path), "--url", g.url])
    assert out.exit_code == 0 and "entries: 2" in out.output, out.output
    out = CliRunner().invoke(command, ["clear", "-c", str(path), "--url", g.url])
    assert out.exit_code == 0 and "dropped 2 entries" in out.output, out.output


def test_memory_entries_are_not_left_to_the_garbage_collector():
    """Kept answers are plain tuples of atoms: after a collection or two the collector no longer tracks them,
    so a full memory cache adds nothing to what every later collection traverses; a hit still serves
    the same bytes, usage and cost."""
    import asyncio
    import gc

    from tierwise.cache.answer_cache import AnswerCache
    from tierwise.cache.settings import CacheConfig, RouteCache
    from tierwise.canonical import Response, TextBlock, Usage
    from tierwise.policies.base import Context
    from tierwise.trace import Trace
    from tierwise.wire import openai_chat

    raw = (b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
           b'"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],'
           b'"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}')

    class Upstream:
        name = "m"

        async def complete(self, req, ctx):
            ctx.trace.call("m", ok=True, model="m", provider="p", locality="remote", cost=0.25, usage=Usage(3, 1),
                           latency_ms=1.0, ttft_ms=None)
            return Response("chatcmpl-1", "m", [TextBlock("hi")], usage=Usage(3, 1), raw=raw, raw_format="openai")

    cache = AnswerCache(CacheConfig(enabled=True, routes={"r": RouteCache(sampled=True)}))

    async def ask(i: int) -> tuple[Response, Context]:
        req = openai_chat.decode_request({"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]}, {})
        ctx = Context(Trace(f"req{i}", "r"), lambda name: None, "openai")
        return await cache.wrap(Upstream(), ctx, "", req, "openai").complete(req, ctx), ctx

    async def run() -> None:
        for i in range(50):
            await ask(i)
        gc.collect()  # the first untracks the packed answers, the second the backend's tuples that hold them
        gc.collect()
        items = list(cache.backend._items.values())
        assert len(items) == 50
        assert not any(gc.is_tracked(it) or gc.is_tracked(it[0]) for it in items)
        resp, ctx = await ask(7)
        assert ctx.notes["cache"] == "hit" and resp.raw == raw and resp.text() == "hi"
        (step,) = ctx.trace.steps
        assert step.detail["saved_usd"] == 0.25 and step.model == "m"

    asyncio.run(run())


@needs_redis
def test_redis_bounded_by_bytes_across_replicas_least_recently_used_first(prefix):
    """`max_bytes` holds on Redis as on the other backends, for every replica together: two gateways' backends
    on one prefix store 40 answers of 1,000 bytes against a 10,000-byte bound; the entries left fit it, the one
    read between puts stays, and invalidating a route gives its bytes back. (Redis entries were bounded by TTL and
    the server's maxmemory only: all 40 stayed.)"""
    import asyncio

    from tierwise.cache.backends import RedisBackend

    async def run() -> None:
        a, b = (RedisBackend(REDIS_URL, prefix, 2.0, 10_000) for _ in range(2))
        keep = "0" * 40
        try:
            await a.put(keep, b"k" * 1000, ttl=60, route="loc", tenant="t")
            for i in range(1, 40):
                await (a if i % 2 else b).put(f"{i:040x}", b"v" * 1000, ttl=60, route="loc", tenant="t")
                assert await b.get(keep, route="loc", tenant="t") == b"k" * 1000
            s = await a.stats()
            assert 5 <= s["entries"] <= 10
            assert s["bytes"] <= 10_000 and s["max_bytes"] == 10_000
            assert await b.get(f"{1:040x}", route="loc", tenant="t") is None  # the oldest unread went first
            assert await a.get(f"{39:040x}", route="loc", tenant="t") == b"v" * 1000
            await b.put("f" * 40, b"w" * 500, ttl=60, route="other", tenant="t")
            held = (await a.stats())["entries"]
            assert await a.invalidate(route="loc") == held - 1
            after = await b.stats()
            assert after["entries"] == 1
            assert after["bytes"] == 500
            await a.client.delete(a.index[2])  # the total evicted by the server: summed again from the sizes
            await a.put("e" * 40, b"x" * 100, ttl=60, route="other", tenant="t")
            assert (await b.stats())["bytes"] == 600
            await a.put("d" * 40, b"y" * 10_000, ttl=60, route="other", tenant="t")  # max_bytes exactly: it stays
            assert await b.get("d" * 40, route="other", tenant="t") == b"y" * 10_000
            assert (await b.stats())["entries"] == 1
            await a.invalidate()
            assert (await b.stats())["bytes"] == 0
        finally:
            await a.close()
            await b.close()

    asyncio.run(run())


@needs_redis
def test_redis_lru_order_survives_a_lost_counter(prefix):
    """The LRU's order counter (`<prefix>lru-seq`) gone while the order is not (the server evicted it, or an
    index scored by the millisecond clock before the counter): the next puts and reads rank after every entry
    already held, so the oldest entry goes first. (The counter restarted at 1: each new entry ranked below the old
    ones and was the next evicted; the old ones, expired or not, stayed.)"""
    import asyncio

    from tierwise.cache.backends import RedisBackend

    async def run() -> None:
        c = RedisBackend(REDIS_URL, prefix, 2.0, 3_000)
        try:
            old, hot = "a" * 40, "b" * 40
            await c.put(old, b"o" * 1000, ttl=60, route="r", tenant="t")
            await c.put(hot, b"h" * 1000, ttl=60, route="r", tenant="t")
            # As an index of the millisecond clock left it (or the counter evicted by the server's maxmemory).
            names = [c.full_key(k, "r", "t") for k in (old, hot)]
            await c.client.zadd(c.index[0], {names[0]: 1_733_000_000_000, names[1]: 1_733_000_000_001})
            await c.client.delete(c.sequence)
            assert await c.get(hot, route="r", tenant="t") == b"h" * 1000  # read: now the most recent
            for i in range(3):
                await c.put(f"{i:040x}", b"n" * 1000, ttl=60, route="r", tenant="t")
                assert await c.get(f"{i:040x}", route="r", tenant="t") == b"n" * 1000  # the newest stays
            assert await c.get(old, route="r", tenant="t") is None  # the least recently used went first
            assert (await c.stats())["bytes"] <= 3_000
        finally:
            await c.close()

    asyncio.run(run())
