"""A compromised worker of the tenant (it holds the worker's Redis ACL: it can read the tenant's task
streams and write to the callers' result streams) answers the gateway's capability route with
crafted results. Real Redis, real gateway over HTTP, the official SDK as the client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import openai
import orjson
import pytest
import redis.asyncio as aredis

from tests.dispatch.conftest import REDIS_URL
from tests.harness import two_tier_config
from tierwise.dispatch.keys import Keyspace

LIMIT = 4096  # dispatch.max_payload_bytes: the largest task payload or result


def completion(text: str) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "evil",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


@asynccontextmanager
async def hostile_worker(prefix: str, results: list[dict[str, Any]]) -> AsyncIterator[None]:
    """Present for `classify`; answers each task it sees with the next of `results` (raw result records)."""
    r = aredis.Redis.from_url(REDIS_URL)
    keys = Keyspace(prefix, "acme")
    sec, _ = await r.time()
    await r.zadd(keys.index("any", "classify"), {"evil": (int(sec) + 600) * 1000})
    stream = keys.stream("any", "classify", "normal")

    async def serve() -> None:
        last = "0-0"
        while results:
            for _, entries in await r.xread({stream: last}, block=200) or []:
                for entry_id, f in entries:
                    last = entry_id
                    out = {**results.pop(0), "worker": "evil"}
                    await r.xadd(f[b"reply"].decode(), {"id": f[b"id"], "r": orjson.dumps(out)})

    task = asyncio.ensure_future(serve())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await r.aclose()


async def test_a_workers_result_is_bounded_and_its_claims_checked(gateway, openai_up, anthropic_up, redis_prefix):
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {"capability": "classify"}},
                          dispatch={"redis_url": REDIS_URL, "prefix": redis_prefix, "tenant": "acme", "timeout": 10,
                                    "max_payload_bytes": LIMIT})
    g = gateway(cfg)
    client = openai.AsyncOpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0)
    huge = {"ok": True, "body": completion("A" * (LIMIT * 50)), "model": "m", "locality": "local"}
    lying = {"ok": True, "body": completion("fine"), "model": "m", "locality": "local", "cost": -1000.0}
    async with hostile_worker(redis_prefix, [huge, lying]):
        # 1. a result far above max_payload_bytes is refused, not relayed to the client
        with pytest.raises(openai.APIStatusError) as e:
            await client.chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
        assert e.value.status_code == 502 and "AAAA" not in str(e.value.body)
        assert "too large" in str(e.value.body)
        # 2. a negative cost claimed by a worker does not reach the ledger (it would fake savings)
        r = await client.chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content == "fine"
    await client.close()
    g.flush()
    rows = [row for row in g.ledger.query() if row.status == 200]
    assert rows and all((row.cost_usd or 0.0) >= 0 for row in rows)


def test_hostile_presence_records_do_not_blind_the_dashboard(two_tier, redis_prefix):
    """A worker writes its own presence record: one shaped to break the reader, or huge, must not hide
    the other workers from the dashboard, nor be read whole into the gateway."""
    import httpx2 as httpx
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    keys = Keyspace(redis_prefix, "acme")
    r.set(keys.presence("good-1"), orjson.dumps({"id": "good-1", "capabilities": ["classify"]}), ex=60)
    r.set(keys.presence("evil-shape"), orjson.dumps({"id": "evil-shape", "capabilities": 7}), ex=60)
    r.set(keys.presence("evil-many"), orjson.dumps({"capabilities": ["c"] * 200_000}), ex=60)
    r.set(keys.presence("evil-huge"), b'{"capabilities": ["x"], "pad": "' + b"p" * (4 << 20) + b'"}', ex=60)
    r.close()
    g = two_tier(dispatch={"redis_url": REDIS_URL, "prefix": redis_prefix, "tenant": "acme"},
                 observability={"dashboard": {"enabled": True, "presence_redis_url": REDIS_URL}})
    topo = httpx.get(g.url + "/dashboard/api/topology", timeout=20).json()
    assert topo["presence_error"] is None
    workers = {w["id"].rsplit(":", 1)[-1]: w for w in topo["workers"]}
    assert workers["good-1"]["capabilities"] == ["classify"]
    assert workers["evil-shape"]["capabilities"] == [] and len(workers["evil-many"]["capabilities"]) <= 20
    assert "evil-huge" not in workers or workers["evil-huge"]["capabilities"] == []


def test_workers_capability_names_cannot_crowd_out_other_metric_labels(two_tier, anthropic_up, redis_prefix):
    """Capability names on `/metrics` come from the workers' own presence records: a worker naming
    hundreds of them must not use up the label values the gateway's own names (cache results,
    verifiers, budgets...) need, which would all read `other`."""
    import redis

    from tests.doubles import Reply
    from tests.gateway.conftest import oai
    from tests.observability.conftest import scrape, total

    r = redis.Redis.from_url(REDIS_URL)
    keys = Keyspace(redis_prefix, "acme")
    for w in range(15):
        caps = [f"cap-{w}-{i}" for i in range(20)]
        r.set(keys.presence(f"w{w}"), orjson.dumps({"id": f"w{w}", "capabilities": caps}), ex=60)
    r.close()
    g = two_tier(dispatch={"redis_url": REDIS_URL, "prefix": redis_prefix, "tenant": "acme"},
                 cache={"enabled": True, "all_routes": True},
                 observability={"metrics": {"enabled": True}, "dashboard": {"presence_redis_url": REDIS_URL}})
    scrape(g.url)  # the gateway reads the workers' presence for the tierwise_workers_present gauge
    anthropic_up.default = Reply(text="cached answer")
    for _ in range(2):  # a miss, then a hit
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "same"}], temperature=0)
    g.flush()
    m = scrape(g.url)
    assert total(m, "tierwise_cache_lookups_total", result="hit") == 1
    assert total(m, "tierwise_cache_lookups_total", result="other") == 0


async def test_a_workers_acl_reaches_only_its_own_capabilities(acl_users, redis_prefix, tmp_path):
    """`tierwise worker --acl` for a worker serving `classify`: a compromised worker logged in with
    those rules cannot read (nor answer) the tenant's `code` tasks, whose prompts are not its business."""
    import redis as sync_redis
    import yaml
    from click.testing import CliRunner

    from tests.dispatch.conftest import worker_config
    from tierwise.cli import main as cli
    from tierwise.dispatch.keys import GROUP

    (tmp_path / "worker.yaml").write_text(yaml.safe_dump(
        worker_config("http://127.0.0.1:9", redis_prefix, worker_id="w1", locality="local")))
    out = CliRunner().invoke(cli, ["worker", "-c", str(tmp_path / "worker.yaml"), "--acl"])
    assert out.exit_code == 0, out.output
    import shlex

    rules = shlex.split(out.output)[5:]  # ACL SETUSER <user> on ><password> <rules...> (a selector is quoted)
    worker = aredis.from_url(acl_users(rules))
    admin = aredis.from_url(REDIS_URL)
    keys = Keyspace(redis_prefix, "acme")
    for cap in ("classify", "code"):
        for zone in ("any", "local"):
            await admin.xgroup_create(keys.stream(zone, cap, "normal"), GROUP, id="0", mkstream=True)
            await admin.xadd(keys.stream(zone, cap, "normal"), {"id": "t1", "p": "{}"})
    try:
        for zone in ("any", "local"):
            assert await worker.xreadgroup(GROUP, "w1", {keys.stream(zone, "classify", "normal"): ">"}, count=1)
            with pytest.raises(sync_redis.exceptions.NoPermissionError):
                await worker.xreadgroup(GROUP, "w1", {keys.stream(zone, "code", "normal"): ">"}, count=1)
            with pytest.raises(sync_redis.exceptions.NoPermissionError):
                await worker.zadd(keys.index(zone, "code"), {"w1": 1})  # nor claim to serve it
    finally:
        await worker.aclose()
        await admin.aclose()
