"""A worker's printed ACL gives each kind of key only the commands the worker runs on it (Redis 7 selectors).

One command list over every key let a worker under `tierwise worker --acl`'s rules DEL, SET or empty (XADD MAXLEN 0,
PEXPIRE 1, ZREMRANGEBYSCORE) any key it may touch: its capabilities' task queues (every caller's waiting tasks
gone, or WRONGTYPE for every publish), their presence index (every caller refused with NoWorker), the tenant's
done marks and its blackboard hash (session 36, dist7). The honest worker serves under the same rules, and the
publishing script now prunes the index's expired entries (workers only ZADD their own). ACL users are made on
the shared Redis and deleted after."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aredis

from tests.dispatch.conftest import REDIS_URL, echo, printed_rules, running_worker, worker_config
from tests.dispatch.shared_key_attempts import let_through, shared_key_attempts
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401 (the same fixture)
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.keys import GROUP, Keyspace


@pytest.mark.asyncio
async def test_a_worker_under_its_printed_rules_cannot_destroy_the_shared_keys_of_its_capabilities(
        acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    openai_up.default = echo()
    keys = Keyspace(redis_prefix, "acme")
    board = {"enabled": True, "key_prefix": redis_prefix + "board:", "timeout": 30}
    honest = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote")
    honest["blackboard"] = board
    honest["dispatch"]["redis_url"] = acl_users(printed_rules(honest, tmp_path, "w1.yaml"))
    other = worker_config(openai_up.url, redis_prefix, worker_id="w2", locality="remote", provider_locality="remote")
    other["blackboard"] = board
    hostile = aredis.from_url(acl_users(printed_rules(other, tmp_path, "w2.yaml")))
    admin = aredis.from_url(REDIS_URL)
    queue, index = keys.stream("any", "classify", "normal"), keys.index("any", "classify")
    waiting = keys.stream("any", "classify", "low")
    board_key = redis_prefix + "board:workers:acme"
    try:
        async with running_worker(honest, tmp_path / "w"), \
                Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:
            assert (await d.dispatch("classify", "first", timeout=20)).text == "echo:first"  # served under the rules
            await admin.xadd(waiting, {"junk": "1"})  # (a stream with an entry, for the emptying attempts)
            attempts = {
                **shared_key_attempts(hostile, keys, queue, waiting, board_key),
                # XCLAIM's LASTID moves the consumer group's last-delivered id: at 9999999999999-0 no task published
                # after it was ever handed out, long after the worker and its user were gone (review36d)
                "XCLAIM LASTID (every later task undeliverable)": lambda: hostile.execute_command(
                    "XCLAIM", queue, GROUP, "w2", 0, "0-1", "LASTID", "9999999999999-0"),
            }
            allowed = await let_through(attempts, wrongtype_too=True)
            assert allowed == [], f"a worker's printed rules allowed: {allowed}"
            assert await admin.xlen(waiting) == 1 and await admin.type(waiting) == b"stream"
            assert await admin.type(board_key) in (b"hash", b"none")
            assert (await d.dispatch("classify", "second", timeout=20)).text == "echo:second"
            # what its own serving takes still works for it (the selectors of its keys)
            assert (await hostile.xgroup_create(waiting, GROUP + "-probe", id="0")) is True
            assert await hostile.zadd(index, {"w2": 1}) == 1
            # ZREM (a worker removes its own entry when it stops) names what it removes: the others' ids are not
            # their entries' names, which hold a secret of their process
            assert await hostile.zrem(index, "w1", "w1#", "w2") == 1  # (only its own)
            assert (await d.dispatch("classify", "third", timeout=20)).text == "echo:third"
    finally:
        await hostile.aclose()
        await admin.aclose()


@pytest.mark.asyncio
async def test_publishing_prunes_the_expired_entries_a_worker_no_longer_removes(openai_up, redis_prefix, tmp_path):
    """Workers no longer ZREMRANGEBYSCORE the index at each heartbeat: the publishing script removes what expired,
    and a worker stopping on purpose leaves its entry to expire (since session 38; before, it removed it, which
    refused requests during a restart)."""
    openai_up.default = echo()
    keys = Keyspace(redis_prefix, "acme")
    index = keys.index("any", "classify")
    admin = aredis.from_url(REDIS_URL)
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote")
    try:
        async with Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:
            async with running_worker(data, tmp_path / "w") as w:
                await admin.zadd(index, {"died-long-ago": 1, "died-now": 2})
                assert (await d.dispatch("classify", "x", timeout=20)).text == "echo:x"
                member = w.presence.member  # (its id and a secret of its process)
                assert await admin.zrange(index, 0, -1) == [member.encode()]
            # stopped on purpose: its entry stays for its TTL (a restart is shorter; session 38, review38b), then is
            # pruned as expired
            expiry = await admin.zscore(index, member)
            assert expiry is not None
            sec, _ = await admin.time()
            assert expiry > int(sec) * 1000
    finally:
        await admin.aclose()


@pytest.mark.asyncio
async def test_a_named_caller_publishes_without_the_right_to_empty_the_index(
        acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    """The prune is the publishing script's pcall: a named caller's rules (one application of several) do not allow
    ZREMRANGEBYSCORE, which would let it empty the index for the others; its tasks are served all the same, and
    the expired entry stays (uncounted)."""
    from tierwise.dispatch.acl import caller_rules

    openai_up.default = echo()
    keys = Keyspace(redis_prefix, "acme")
    index = keys.index("any", "classify")
    admin = aredis.from_url(REDIS_URL)
    url = acl_users(caller_rules(redis_prefix, "acme", caller="app"))
    app = aredis.from_url(url)
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                         callers=["app"])
    try:
        async with running_worker(data, tmp_path / "w"), \
                Dispatcher(url, tenant="acme", prefix=redis_prefix, caller="app") as d:
            await admin.zadd(index, {"died-long-ago": 1})
            assert (await d.dispatch("classify", "x", timeout=20)).text == "echo:x"
            assert await admin.zscore(index, "died-long-ago") == 1
            with pytest.raises(redis.exceptions.NoPermissionError):
                await app.zremrangebyscore(index, "-inf", "+inf")
    finally:
        await app.aclose()
        await admin.aclose()


@pytest.mark.asyncio
async def test_a_long_task_keeps_its_claim_under_theprinted_rules(
        acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    """The claim renewal is XAUTOCLAIM from the task's own entry now (XCLAIM left the rules with its LASTID): a task
    running 3 visibility timeouts on one worker is not re-claimed by the other, and runs once."""
    openai_up.default = echo(delay=3.0)
    workers = []
    for wid in ("w1", "w2"):
        data = worker_config(openai_up.url, redis_prefix, worker_id=wid, locality="remote", provider_locality="remote",
                             capacity=1)
        data["dispatch"]["redis_url"] = acl_users(printed_rules(data, tmp_path, f"{wid}.yaml"))
        workers.append(data)
    async with running_worker(workers[0], tmp_path / "w1") as w1, running_worker(workers[1], tmp_path / "w2") as w2, \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:
        got = await d.dispatch("classify", "slow", timeout=30)
    assert got.text == "echo:slow" and got.attempt == 1, got
    assert w1.stats["reclaimed"] + w2.stats["reclaimed"] == 0 and w1.stats["lost"] + w2.stats["lost"] == 0
    assert len(openai_up.requests) == 1
