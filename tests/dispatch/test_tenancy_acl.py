"""Tenancy and local-only across the wire, enforced by Redis ACLs (the rules tierwise.dispatch.acl
makes, as `tierwise worker --acl` prints them): a tenant's worker can read only its tenant's
streams, a remote worker cannot read the local-only zone even if its config claims to be local,
and a worker and a caller logged in with exactly those rules serve a task end to end.

ACL users are created here with unique names on the shared Redis and deleted afterwards; the
default user is never changed."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator

import orjson
import pytest
import redis
import redis.asyncio as aredis

from tests.dispatch.conftest import REDIS_URL, echo, running_worker, worker_config
from tierwise.dispatch.acl import caller_rules, url_db, worker_rules
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.errors import NoWorker
from tierwise.dispatch.keys import GROUP, Keyspace


@pytest.fixture
def acl_users() -> Iterator[object]:
    admin = redis.Redis.from_url(REDIS_URL)
    made: list[str] = []

    def make(rules: list[str]) -> str:
        """A user with these rules; returns a redis URL that logs in as it."""
        name = f"tierwise-test-{uuid.uuid4().hex[:10]}"
        password = secrets.token_hex(16)
        admin.acl_setuser(name, enabled=True, passwords=[f"+{password}"])
        db = url_db(REDIS_URL)  # (the rules of a test name no database: the fixtures' own, when it is not 0)
        admin.execute_command("ACL", "SETUSER", name, *rules, *([f"+select|{db}"] if db else []))
        made.append(name)
        return f"redis://{name}:{password}@127.0.0.1:6379/{url_db(REDIS_URL)}"

    yield make
    for name in made:
        admin.acl_deluser(name)
    admin.close()


async def test_a_tenants_worker_reads_only_its_tenants_streams(acl_users, redis_prefix):
    acme_remote = aredis.from_url(acl_users(worker_rules(redis_prefix, "acme", "remote")))
    acme_local = aredis.from_url(acl_users(worker_rules(redis_prefix, "acme", "local")))
    acme, globex = Keyspace(redis_prefix, "acme"), Keyspace(redis_prefix, "globex")
    admin = aredis.from_url(REDIS_URL)
    for k in (acme.stream("any", "classify", "normal"), acme.stream("local", "classify", "normal"),
              globex.stream("any", "classify", "normal")):
        await admin.xgroup_create(k, GROUP, id="0", mkstream=True)
        await admin.xadd(k, {"id": "t1", "p": "{}"})

    async def read(client: aredis.Redis, key: str) -> object:
        return await client.xreadgroup(GROUP, "w", {key: ">"}, count=1)

    # its own tenant's any-zone stream: allowed
    assert await read(acme_remote, acme.stream("any", "classify", "normal"))
    # the local-only zone: not for a remote worker, whatever it claims
    with pytest.raises(redis.exceptions.NoPermissionError):
        await read(acme_remote, acme.stream("local", "classify", "normal"))
    # a local worker of the tenant reads it
    assert await read(acme_local, acme.stream("local", "classify", "normal"))
    # another tenant's streams, results and dead letters: nobody of acme reads them
    for client in (acme_remote, acme_local):
        with pytest.raises(redis.exceptions.NoPermissionError):
            await read(client, globex.stream("any", "classify", "normal"))
        with pytest.raises(redis.exceptions.NoPermissionError):
            await client.xrange(globex.results("someone", "any", "classify"))
        with pytest.raises(redis.exceptions.NoPermissionError):
            await client.xrange(globex.dead("classify"))
        with pytest.raises(redis.exceptions.NoPermissionError):
            await client.get(f"{redis_prefix}presence:globex:w")
        with pytest.raises(redis.exceptions.NoPermissionError):
            await client.keys("*")  # no listing of the keyspace either
    for c in (acme_remote, acme_local, admin):
        await c.aclose()


async def test_a_worker_writes_results_but_reads_none(acl_users, redis_prefix):
    """A worker must add to its tenant's result streams (to answer), but had every command of its
    rules on them: a remote worker serving only `classify` made a consumer group on a caller's
    result stream and read every answer there, those of local-only tasks and of other
    capabilities included. It may now add an entry and renew the stream's expiry, nothing else."""
    acme = Keyspace(redis_prefix, "acme")
    results = acme.results("gateway-1", "any", "classify")
    admin = aredis.from_url(REDIS_URL)
    await admin.xadd(results, {"id": "task_local", "r": '{"ok": true, "body": "the local-only answer"}'})
    remote = aredis.from_url(acl_users(worker_rules(redis_prefix, "acme", "remote", ["classify"])))
    reads = {
        "xgroup create": lambda: remote.xgroup_create(results, "mine", id="0"),
        "xreadgroup": lambda: remote.xreadgroup(GROUP, "me", {results: ">"}, count=10),
        "xautoclaim": lambda: remote.xautoclaim(results, GROUP, "me", 0, "0"),
        "xpending": lambda: remote.xpending(results, GROUP),
        "xlen": lambda: remote.xlen(results),
        "del": lambda: remote.delete(results),
        "eval xrange": lambda: remote.eval("return redis.call('XRANGE', KEYS[1], '-', '+')", 1, results),
        "eval xgroup": lambda: remote.eval("return redis.call('XGROUP', 'CREATE', KEYS[1], 'g2', '0')", 1, results),
    }
    await admin.xgroup_create(results, GROUP, id="0")  # as if some consumer group existed on it
    for what, call in reads.items():
        with pytest.raises((redis.exceptions.NoPermissionError, redis.exceptions.ResponseError)):
            await call()
            pytest.fail(f"{what} on a result stream was allowed")
    assert await admin.xlen(results) == 1
    # What it must still do: answer (the completion script), as the end-to-end test below shows.
    for c in (remote, admin):
        await c.aclose()


async def test_end_to_end_as_acl_users_and_a_remote_worker_claiming_to_be_local(
        acl_users, openai_up, redis_prefix, worker_processes):
    openai_up.default = echo()
    worker_url = acl_users(worker_rules(redis_prefix, "acme", "local"))
    remote_url = acl_users(worker_rules(redis_prefix, "acme", "remote"))
    caller_url = acl_users(caller_rules(redis_prefix, "acme"))
    # the only worker online is a remote machine whose config lies that it is local: its Redis user
    # has no access to the local zone, so local-only tasks can never reach it
    liar = worker_processes(worker_config(openai_up.url, redis_prefix, worker_id="liar", redis_url=remote_url,
                                          locality="local"), "liar")
    liar.wait_ready()
    async with Dispatcher(caller_url, tenant="acme", prefix=redis_prefix, local_only=["classify"]) as d:
        with pytest.raises(NoWorker, match="locality local"):
            await d.dispatch("classify", "medical record", timeout=5)
        assert (await d.dispatch("classify", "public", local_only=False, timeout=20)).worker == "liar"
        honest = worker_processes(worker_config(openai_up.url, redis_prefix, worker_id="gpu-1",
                                                redis_url=worker_url), "gpu-1")
        honest.wait_ready()
        got = await asyncio.gather(*[d.dispatch("classify", f"private {i}", timeout=20) for i in range(6)])
        assert [g.text for g in got] == [f"echo:private {i}" for i in range(6)]
        assert {g.worker for g in got} == {"gpu-1"}
    assert "may not read the local zone of tenant acme" in liar.output()
    assert honest.stop() == 0 and liar.stop() == 0
    assert "Traceback" not in honest.output()
    for url, proc in ((worker_url, honest), (remote_url, liar)):  # logs name host:port, never the password
        password = url.split(":")[2].split("@")[0]
        assert password not in proc.output() and "127.0.0.1:6379" in proc.output()


def _following(task_id: str, n: int) -> str:
    """The id `n` after `task_id` were ids a process prefix and a counter (what they were)."""
    return task_id[:-12] + f"{int(task_id[-12:], 16) + n:012x}" if all(
        c in "0123456789abcdef" for c in task_id[-12:]) else ""


async def test_a_hostile_worker_cannot_end_or_forge_the_results_of_tasks_it_may_not_take(
        acl_users, openai_up, redis_prefix, tmp_path):
    """A remote worker serving `classify` took one task of a caller. All the caller's results came back on one
    stream, which the worker's selector let it XADD to and EXPIRE: an EXPIRE of 0 deleted the answers of the
    caller's other tasks (local-only ones included), an XADD with MAXLEN 0 emptied the stream, and from the id
    of the task it took (a process prefix and a counter) it named the caller's next tasks and answered them
    first. Results now come back per capability and zone, the worker's rules reach only its own, and ids are
    random: the caller's local-only task gets its real answer."""
    openai_up.default = echo(delay=1.0)
    keys = Keyspace(redis_prefix, "acme")
    admin = aredis.from_url(REDIS_URL)
    hostile = aredis.from_url(acl_users(worker_rules(redis_prefix, "acme", "remote", ["classify"])))
    honest = worker_config(openai_up.url, redis_prefix, worker_id="honest",
                           redis_url=acl_users(worker_rules(redis_prefix, "acme", "local", ["summarize"],
                                                            worker_id="honest")),
                           capabilities={"summarize": {"model": "small"}})
    caller_url = acl_users(caller_rules(redis_prefix, "acme"))
    now_ms = int((await admin.time())[0]) * 1000
    await hostile.zadd(keys.index("any", "classify"), {"hostile": now_ms + 60_000})  # it says it is there
    taken = keys.stream("any", "classify", "normal")
    await hostile.xgroup_create(taken, GROUP, id="0", mkstream=True)
    async with running_worker(honest, tmp_path), Dispatcher(caller_url, tenant="acme", prefix=redis_prefix,
                                                            local_only=["summarize"]) as d:
        first = asyncio.create_task(d.dispatch("classify", "hello", timeout=20))
        got: list = []
        while not got:
            got = await hostile.xreadgroup(GROUP, "hostile", {taken: ">"}, count=1, block=100)
        fields = got[0][1][0][1]
        its_id, its_reply = fields[b"id"].decode(), fields[b"reply"].decode()
        second = asyncio.create_task(d.dispatch("summarize", "the record", timeout=20))
        victim = keys.stream("local", "summarize", "normal")
        entries: list = []
        while not entries:  # the task as Redis holds it (the honest worker is answering it for a second)
            entries = await admin.xrange(victim)
            await asyncio.sleep(0.01)
        victim_id, victim_reply = entries[0][1][b"id"].decode(), entries[0][1][b"reply"].decode()
        assert victim_id not in {_following(its_id, n) for n in range(1, 20)}
        for what, call in {"expire": lambda: hostile.expire(victim_reply, 0),
                           "xadd maxlen 0": lambda: hostile.xadd(victim_reply, {"x": "1"}, maxlen=0),
                           "eval": lambda: hostile.eval("return redis.call('EXPIRE', KEYS[1], 0)", 1, victim_reply),
                           }.items():
            with pytest.raises(redis.exceptions.NoPermissionError):
                await call()
                pytest.fail(f"{what} on another capability's result stream was allowed")
        forged = orjson.dumps({"ok": True, "body": {"choices": [{"message": {"role": "assistant",
                                                                                "content": "forged"}}]}})
        await hostile.xadd(its_reply, {"id": victim_id, "r": forged})  # where it may write, naming the task
        answer = await second
        assert answer.text == "echo:the record" and answer.worker == "honest"
        assert d.misdirected == 1
        first.cancel()
    for c in (hostile, admin):
        await c.aclose()


async def test_a_callers_user_named_for_it_reads_no_other_callers_results(
        acl_users, openai_up, redis_prefix, tmp_path):
    """Every caller of a tenant could read every other caller's result streams (`~r:*`) and task streams: one
    application read another's answers and prompts, and could delete its tasks. With `dispatch.caller` a caller's
    user reaches only its own results and reads no queue."""
    openai_up.default = echo()
    app_a = acl_users(caller_rules(redis_prefix, "acme", caller="app-a"))
    app_b = aredis.from_url(acl_users(caller_rules(redis_prefix, "acme", caller="app-b")))
    cfg = worker_config(openai_up.url, redis_prefix, worker_id="box-1",
                        redis_url=acl_users(worker_rules(redis_prefix, "acme", "local")), callers=["app-a"])
    async with running_worker(cfg, tmp_path), Dispatcher(app_a, tenant="acme", prefix=redis_prefix,
                                                         caller="app-a") as d:
        assert (await d.dispatch("classify", "mine", timeout=20)).text == "echo:mine"
        theirs = d.results_key("any", "classify")
        queue = Keyspace(redis_prefix, "acme").stream("any", "classify", "normal", "app-a")  # its prompts pass here
        for what, call in {"xrange": lambda: app_b.xrange(theirs), "xread": lambda: app_b.xread({theirs: "0-0"}),
                           "del": lambda: app_b.delete(theirs), "xadd": lambda: app_b.xadd(d.inbox, {"w": "1"}),
                           "xrange queue": lambda: app_b.xrange(queue), "xread queue": lambda: app_b.xread({queue: "0"}),
                           "eval xrange queue": lambda: app_b.eval("return redis.call('XRANGE', KEYS[1], '-', '+')",
                                                                   1, queue),
                           "xdel queue": lambda: app_b.xdel(queue, "1-0"), "del queue": lambda: app_b.delete(queue),
                           }.items():
            with pytest.raises(redis.exceptions.ResponseError):  # NOPERM (a script's: a plain ResponseError)
                await call()
                pytest.fail(f"{what} on another caller's results was allowed")
    await app_b.aclose()


async def test_a_worker_cannot_open_the_gateways_breakers_through_the_blackboard(acl_users, openai_up, redis_prefix,
                                                                                  tmp_path):
    """A worker with the blackboard on had write access to the gateways' own board hash (its ACL named it): a
    compromised worker published a `frontier` whose breaker had just opened, with the weight of a trillion calls,
    and every gateway adopted the open breaker (again at each exchange) and its error rate. Workers now publish
    into a hash of their own, whose breaker states gateways do not adopt, and no peer weighs more than a window."""
    import json
    import shlex

    import yaml
    from click.testing import CliRunner

    from tierwise.cli import main
    from tierwise.dispatch.blackboard import Blackboard
    from tierwise.dispatch.blackboard_settings import BlackboardConfig
    from tierwise.providers.breaker import CircuitBreaker
    from tierwise.providers.live_stats import LiveStats

    board = {"enabled": True, "key_prefix": redis_prefix + "board:"}
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote")
    data["blackboard"] = board
    (tmp_path / "worker.yaml").write_text(yaml.safe_dump(data))
    out = CliRunner().invoke(main, ["worker", "-c", str(tmp_path / "worker.yaml"), "--acl"])
    assert out.exit_code == 0, out.output
    hostile = aredis.from_url(acl_users(shlex.split(out.output)[5:]))  # its rules, as an operator would apply them
    admin = aredis.from_url(REDIS_URL)
    own = LiveStats(window=20, breaker=CircuitBreaker())
    for _ in range(10):
        own.ok(100.0, 50.0)
    gateway = Blackboard(BlackboardConfig(**board, replica_id="gw-1"), {"frontier": own}, REDIS_URL, tenant="acme")
    await gateway.start()
    try:
        now_ms = int((await admin.time())[0]) * 1000
        forged = json.dumps({"models": {"frontier": {"w": 1e12, "error_rate": 1.0, "latency_ms": 1e9,
                                                     "breaker_open": True, "breaker_age_ms": 0,
                                                     "breaker_retry_s": 3600}}})
        written = []
        for key in ("replicas", "workers", "workers:acme"):  # whichever its user may write
            try:
                await hostile.hset(redis_prefix + "board:" + key, "evil", f"{now_ms} {forged}")
                written.append(key)
            except redis.exceptions.NoPermissionError:
                pass
        assert written  # it may publish somewhere: its queue depth is useful to the gateways
        await gateway.exchange()
        assert own.breaker.opened_at is None
        assert gateway.value("frontier", "error_rate") < 0.7  # one window (20 calls) against its own 10
        assert gateway.value("frontier", "breaker_open") == 0.0
    finally:
        await gateway.close()
        for c in (hostile, admin):
            await c.aclose()


async def test_a_named_caller_republishes_a_task_whose_stream_redis_lost(acl_users, redis_prefix):
    """A named caller's user reads its own task streams only (they are per caller since session 37): after an
    outage it checks whether its waiting task's entry survived, and publishes the task again when it is gone, with
    its stream or alone (before, it could tell only whether the shared stream survived)."""
    keys = Keyspace(redis_prefix, "acme")
    admin = aredis.from_url(REDIS_URL)
    now_ms = int((await admin.time())[0]) * 1000
    await admin.zadd(keys.index("any", "classify"), {"somebody": now_ms + 60_000})  # a worker is "present"
    async with Dispatcher(acl_users(caller_rules(redis_prefix, "acme", caller="app-a")), tenant="acme",
                          prefix=redis_prefix, caller="app-a") as d:
        task = asyncio.create_task(d.dispatch("classify", "kept", timeout=20))
        stream = keys.stream("any", "classify", "normal", "app-a")
        while not await admin.exists(stream):
            await asyncio.sleep(0.01)
        await d._recover()  # the entry is there: nothing is published again
        assert d.republished == 0 and await admin.xlen(stream) == 1
        await admin.delete(stream)  # as a Redis that restarted without its data
        await d._recover()
        assert d.republished == 1 and await admin.xlen(stream) == 1
        await admin.xadd(stream, {"other": "task"})  # the stream survives, the entry does not
        await admin.xdel(stream, d._waiting[next(iter(d._waiting))].entry_id)
        await d._recover()
        assert d.republished == 2 and await admin.xlen(stream) == 2
        task.cancel()
    await admin.aclose()


async def test_a_worker_under_its_printed_rules_publishes_on_the_blackboard(acl_users, openai_up, redis_prefix,
                                                                            tmp_path):
    """The exchange script counts the workers' hash (HLEN) before reading it, and `--acl` gave a worker no `hlen`:
    every exchange of a worker logged in with its printed rules failed (NOPERM), so its queue depth never reached
    the gateways, whose board showed no worker at all (session 35, obs6)."""
    import shlex

    import yaml
    from click.testing import CliRunner

    from tierwise.cli import main
    from tierwise.dispatch.blackboard import Blackboard
    from tierwise.dispatch.blackboard_settings import BlackboardConfig

    board = {"enabled": True, "key_prefix": redis_prefix + "board:", "publish_interval_ms": 50, "timeout": 30}
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote")
    data["blackboard"] = board
    (tmp_path / "worker.yaml").write_text(yaml.safe_dump(data))
    out = CliRunner().invoke(main, ["worker", "-c", str(tmp_path / "worker.yaml"), "--acl"])
    assert out.exit_code == 0, out.output
    data["dispatch"]["redis_url"] = acl_users(shlex.split(out.output)[5:])  # as an operator would apply them
    reader = Blackboard(BlackboardConfig(**board, replica_id="gateway-1"), {}, REDIS_URL,
                        tenant="acme")  # the view of a gateway of the worker's tenant
    await reader.start()
    try:
        async with running_worker(data, tmp_path / "w") as w:
            deadline = asyncio.get_running_loop().time() + 30
            while asyncio.get_running_loop().time() < deadline and "small" not in reader.peers:
                await asyncio.sleep(0.05)
            assert "small" in reader.peers, f"the worker's statistics never reached the board: {w.gateway.blackboard.degraded}"
            assert reader.value("small", "queue_depth") == 0
    finally:
        await reader.close()
