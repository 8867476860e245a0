"""`tierwise worker --list` reads the tenant's presence records, which any worker of the tenant writes (its Redis user
may write under `<prefix>presence:<tenant>:*`): it reads them with the dashboard's bounds (session 35, obs6). A
redis-server of the test's own, so its byte counter is this test's alone."""

from __future__ import annotations

import json

import orjson
import redis
import yaml
from click.testing import CliRunner

from tests.dispatch.conftest import worker_config
from tierwise.cli import main
from tierwise.dispatch.keys import Keyspace

PREFIX = "obs6:"


def test_worker_list_reads_hostile_presence_records_bounded(own_redis, tmp_path):
    server = own_redis(appendonly=False)
    r = redis.Redis.from_url(server.url)
    keys = Keyspace(PREFIX, "acme")
    r.set(keys.presence("good"), orjson.dumps({"id": "good", "capabilities": ["classify"]}), ex=300)
    # a record of another shape (a hash), one of 8 MB, and a key name of 8 MB
    r.hset(keys.presence("hashed"), mapping={"capabilities": "classify", "status": "online", "junk": "j" * 100})
    r.set(keys.presence("huge"), b'{"id": "huge", "pad": "' + b"p" * (8 << 20) + b'"}', ex=300)
    r.set(keys.presence("n" * (8 << 20)), orjson.dumps({"id": "long-name"}), ex=300)
    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump(worker_config("http://127.0.0.1:9", PREFIX, worker_id="me", redis_url=server.url)))
    before = int(r.info("stats")["total_net_output_bytes"])
    out = CliRunner().invoke(main, ["worker", "-c", str(path), "--list"])
    sent = int(r.info("stats")["total_net_output_bytes"]) - before
    assert out.exit_code == 0, f"one hash record made the listing fail: {out.output[:300]}"
    listed = {rec["id"]: rec for rec in map(json.loads, out.output.splitlines())}
    assert listed["good"]["capabilities"] == ["classify"]
    assert listed["hashed"] == {"id": "hashed", "capabilities": "classify", "status": "online"}
    assert "pad" not in listed["huge"] and "not read" in listed["huge"]["unread"]
    assert "long-name" not in listed
    assert len(out.output) < 4096, f"the listing printed {len(out.output):,} characters"
    assert sent < 1 << 20, f"Redis sent {sent:,} bytes for one listing"
    r.close()


async def test_a_local_only_refusal_counts_the_other_zones_workers_without_reading_them(own_redis):
    """A local-only task with no local worker is refused naming how many workers serve the capability in the `any`
    zone. That index is a sorted set any worker of the capability may ZADD into: its members were read (ZRANGEBYSCORE)
    for the count, a planted member of 8 MB sent to the caller at every such request."""
    import pytest

    from tierwise.dispatch.client import Dispatcher
    from tierwise.dispatch.errors import NoWorker

    server = own_redis(appendonly=False)
    r = redis.Redis.from_url(server.url)
    keys = Keyspace(PREFIX, "acme")
    now_ms = int(r.time()[0]) * 1000
    r.zadd(keys.index("any", "classify"), {"remote-1": now_ms + 600_000, "m" * (8 << 20): now_ms + 600_000})
    async with Dispatcher(server.url, tenant="acme", prefix=PREFIX, local_only=["classify"], timeout=5) as d:
        before = int(r.info("stats")["total_net_output_bytes"])
        with pytest.raises(NoWorker) as e:
            await d.dispatch("classify", "hello")
        sent = int(r.info("stats")["total_net_output_bytes"]) - before
    assert "2 worker(s) serve it in the `any` zone only" in str(e.value)
    assert sent < 1 << 20, f"Redis sent {sent:,} bytes for one refused local-only task"
    r.close()
