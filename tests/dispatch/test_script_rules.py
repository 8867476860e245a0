"""The printed rules run tierwise's own scripts only, not any Lua a user sends.

Every role's rules allowed EVAL, EVALSHA and SCRIPT LOAD with no key: `EVALSHA <sha> 0` needs no key permission,
so a worker (or a caller, or the dashboard's presence reader) under its printed rules ran any Lua it loaded. Its
commands are still checked against the rules, but not its running time: `while true do end` after one write
cannot be killed (SCRIPT KILL refuses a script that wrote), and Redis answers BUSY to every client of every tenant
until an operator runs SHUTDOWN NOSAVE (session 36, review36d). The rules now allow EVALSHA of the SHA-1 of each
script the role runs (`+evalsha|<sha>`, Redis's first-argument rule) and no EVAL; SCRIPT LOAD stays (redis-py
loads a script again after a Redis restart; on Redis 7 loading compiles and runs nothing). This test loads a
script that returns at once: the shared Redis is never blocked."""

from __future__ import annotations

import asyncio
import re

import pytest
import redis
import redis.asyncio as aredis

from tests.dispatch.conftest import REDIS_URL, echo, printed_rules, running_worker, worker_config
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401 (the same fixture)
from tierwise.dispatch.acl import caller_rules, presence_reader_rules
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.keys import Keyspace
from tierwise.dispatch.presence import records

FOREIGN = "return 'ran a script of its own'"


async def _runs_foreign_lua(client: aredis.Redis) -> list[str]:
    ran = []
    try:
        sha = await client.script_load(FOREIGN)
        await client.evalsha(sha, 0)
        ran.append("SCRIPT LOAD + EVALSHA")
    except redis.exceptions.NoPermissionError:
        pass
    try:
        await client.eval(FOREIGN, 0)
        ran.append("EVAL")
    except redis.exceptions.NoPermissionError:
        pass
    return ran


@pytest.mark.asyncio
async def test_no_role_under_its_printed_rules_runs_lua_of_its_own(
        acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    openai_up.default = echo()
    board = {"enabled": True, "key_prefix": redis_prefix + "board:", "timeout": 30}
    honest = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                           callers=["app"])
    honest["blackboard"] = board
    worker_url = acl_users(printed_rules(honest, tmp_path, "w1.yaml"))
    honest["dispatch"]["redis_url"] = worker_url
    unnamed = worker_config(openai_up.url, redis_prefix, worker_id="x", locality="local")
    del unnamed["dispatch"]["worker"]["id"]
    users = {"named worker": worker_url,
             "unnamed local worker": acl_users(printed_rules(unnamed, tmp_path, "w2.yaml")),
             "named caller": acl_users(caller_rules(redis_prefix, "acme", caller="app")),
             "unnamed caller": acl_users(caller_rules(redis_prefix, "acme")),
             "presence reader": acl_users(presence_reader_rules(redis_prefix, "acme"))}
    ran = {}
    for role, url in users.items():
        c = aredis.from_url(url)
        try:
            got = await _runs_foreign_lua(c)
        finally:
            await c.aclose()
        if got:
            ran[role] = got
    assert ran == {}, f"printed rules that run any Lua: {ran}"
    # tierwise's own scripts still run under the same rules: a worker's (serving, the blackboard's exchange), a
    # caller's (publishing), the presence reader's (the walk of the records)
    admin = aredis.from_url(REDIS_URL)
    reader = aredis.from_url(users["presence reader"])
    try:
        for caller in ("named caller", "unnamed caller"):
            async with running_worker(honest, tmp_path / "w"), \
                    Dispatcher(users[caller], tenant="acme", prefix=redis_prefix, caller="app") as d:
                assert (await d.dispatch("classify", "hi", timeout=20)).text == "echo:hi"
                assert [r["id"] for r in await records(reader, Keyspace(redis_prefix, "acme"))] == ["w1"]
                for _ in range(100):  # the worker's blackboard exchange (a script) ran: its field is there
                    if await admin.hlen(redis_prefix + "board:workers:acme"):
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("the worker's blackboard exchange never wrote under its printed rules")
    finally:
        await reader.aclose()
        await admin.aclose()


def _as_of_another_version(rules: list[str]) -> list[str]:
    """The rules as another tierwise version printed them: its scripts' text, so their SHA-1s, differ."""
    other = "+evalsha|" + "0" * 40
    return [re.sub(r"\+evalsha\|[0-9a-f]{40}", other, r) for r in rules]


@pytest.mark.asyncio
async def test_rules_printed_for_other_scripts_are_named_as_the_reason(
        acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    """Upgrading tierwise changes a script's SHA-1 when it changes its text: Redis then refuses EVALSHA (NOPERM).
    The worker read that as a zone its user may not read, dropped every zone and stopped with "its Redis user may
    read none of its capabilities' task queues"; a caller said only "Redis refused the task: NOPERM …". Both now
    say the rules are for other scripts and how to print them again."""
    from tests.harness import make_config
    from tierwise.dispatch.errors import DispatchUnavailable
    from tierwise.dispatch.worker import Worker
    from tierwise.server.build import build_gateway

    openai_up.default = echo()
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote")
    data["dispatch"]["redis_url"] = acl_users(_as_of_another_version(printed_rules(data, tmp_path, "w1.yaml")))
    cfg = make_config(data, tmp_path)
    gw = build_gateway(cfg)
    try:
        with pytest.raises(ValueError) as refused:
            await asyncio.wait_for(Worker(cfg, gw).run(asyncio.Event()), 20)
    finally:
        await gw.close()
    assert "this tierwise version's scripts" in str(refused.value), refused.value
    assert "tierwise worker --acl" in str(refused.value)
    caller = acl_users(_as_of_another_version(caller_rules(redis_prefix, "acme", caller="app")))
    async with Dispatcher(caller, tenant="acme", prefix=redis_prefix, caller="app") as d:
        with pytest.raises(DispatchUnavailable) as unavailable:
            await d.dispatch("classify", "hi", timeout=5)
    assert "this tierwise version's scripts" in str(unavailable.value), unavailable.value
