"""`maxmemory` with `noeviction` bounds what a caller's publishing script writes (session 38, review38b).

docs/distributed.md (Memory) names `maxmemory` as the only bound on the keys a caller may make that no worker reads.
Redis 7 refuses a plain command past `maxmemory`, but a script without a shebang only at its first write: the
publishing script's first write is its prune of expired presence entries, which an unnamed caller's rules allow, so
its XADD was never checked. An unnamed caller under its printed rules, calling the publishing script with keys of its
choosing (the real index, so workers count as present; a queue that no worker reads, no stream to count against
`max_pending`), wrote 40 entries of 1 MB into a Redis of 12 MB (3.5x `maxmemory`) while its direct XADD was refused
(a named caller's prune is refused, so its XADD was checked). The script now declares
itself (`#!lua`): Redis refuses it past `maxmemory`, and the caller hears DispatchUnavailable (503). A redis-server of
the test's own, so the memory figures are this test's alone."""

from __future__ import annotations

import secrets

import pytest
import redis

from tierwise.dispatch.acl import caller_rules
from tierwise.dispatch.keys import Keyspace
from tierwise.dispatch.scripts import ENQUEUE

PREFIX = "oom38:"
MAXMEMORY = 12 << 20


def test_the_publishing_script_stops_at_maxmemory(own_redis):
    server = own_redis(appendonly=False)
    admin = redis.Redis.from_url(server.url)
    admin.config_set("maxmemory", MAXMEMORY)
    admin.config_set("maxmemory-policy", "noeviction")
    keys = Keyspace(PREFIX, "acme")
    sec, _ = admin.time()
    admin.zadd(keys.index("any", "classify"), {"w1#s": (int(sec) + 300) * 1000})  # a worker present
    password = secrets.token_hex(16)
    admin.execute_command("ACL", "SETUSER", "app", "on", f">{password}", *caller_rules(PREFIX, "acme"))
    caller = redis.Redis(port=server.port, username="app", password=password)
    publish = caller.register_script(ENQUEUE)
    index = keys.index("any", "classify")
    refused = None
    for n in range(40):
        try:
            publish(keys=[index, keys.stream("zz", f"junk{n}", "normal", "app"), keys.wake("zz", "x", "app"),
                          index, index], args=[5, 256, 60_000, "p", b"z" * (1 << 20)])
        except redis.ResponseError as e:
            refused = str(e)
            break
    used = int(admin.info("memory")["used_memory"])
    assert refused is not None and "maxmemory" in refused, refused
    assert used < MAXMEMORY * 1.5, used / MAXMEMORY


@pytest.mark.asyncio
async def test_a_publish_past_maxmemory_is_a_503(own_redis):
    from tierwise.dispatch.client import Dispatcher
    from tierwise.dispatch.errors import DispatchUnavailable

    server = own_redis(appendonly=False)
    admin = redis.Redis.from_url(server.url)
    keys = Keyspace(PREFIX, "acme")
    sec, _ = admin.time()
    admin.zadd(keys.index("any", "classify"), {"w1#s": (int(sec) + 300) * 1000})
    admin.set("filler", b"f" * (8 << 20))
    admin.config_set("maxmemory", 4 << 20)
    admin.config_set("maxmemory-policy", "noeviction")
    async with Dispatcher(server.url, tenant="acme", prefix=PREFIX, caller="app") as d:
        with pytest.raises(DispatchUnavailable, match="maxmemory") as e:
            await d.dispatch("classify", "x", timeout=5)
    assert e.value.status == 503


@pytest.mark.asyncio
async def test_a_result_refused_past_maxmemory_is_kept_not_run_again(openai_up, own_redis, tmp_path):
    """A worker whose completion Redis refused (past `maxmemory`) raised out of the task: the answer was lost, the
    entry re-claimed and the model called again (and again: 22 re-claims in 15 s in a private run); and the heartbeat
    Redis refused (its SET) skipped the renewal of running tasks' claims, so they were re-claimed and run again. It now
    waits for Redis to take the result, as it waits out an outage, and renews claims before the heartbeat."""
    import asyncio

    from tests.dispatch.conftest import HoldAfter, running_worker, worker_config
    from tierwise.dispatch.client import Dispatcher

    server = own_redis(appendonly=False)
    admin = redis.Redis.from_url(server.url)
    upstream = HoldAfter(0, most=1)
    openai_up.default = upstream
    cfg = worker_config(openai_up.url, PREFIX, worker_id="w1", locality="remote", provider_locality="remote",
                        redis_url=server.url, callers=["app"])
    async with running_worker(cfg, tmp_path / "w"), \
            Dispatcher(server.url, tenant="acme", prefix=PREFIX, caller="app") as d:
        held = asyncio.create_task(d.dispatch("classify", "held", timeout=30))
        await upstream.until_held(1)
        admin.set("filler", b"f" * (16 << 20))
        admin.config_set("maxmemory", 8 << 20)
        admin.config_set("maxmemory-policy", "noeviction")
        upstream.release.set()
        await asyncio.sleep(3)  # the completion refused, past the 1 s visibility timeout
        admin.delete("filler")
        assert (await held).text == "echo:held"
    calls = len(upstream.held) + len(upstream.answered)
    assert calls == 1, f"the model was called {calls} times for one task"
