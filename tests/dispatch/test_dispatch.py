"""Distributed mode against the real Redis on 6379 (keys under the test's own prefix): a task
goes to a worker serving its capability and its one result comes back; presence; capacity;
priorities; the clear errors (no worker, back-pressure, payload size); malformed entries and
tasks that keep killing their workers go to the dead-letter stream."""

from __future__ import annotations

import asyncio
import threading
import time

import orjson
import pytest
import redis.asyncio as aredis
import yaml

from tests.dispatch.conftest import PRESENCE_TTL, REDIS_URL, echo, running_worker, worker_config
from tests.doubles import Gate
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.errors import NoWorker, Overloaded, RequestTooLarge, TaskFailed
from tierwise.dispatch.keys import GROUP, Keyspace
from tierwise.observability.topology import RedisPresence


def overlap(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals open at one moment."""
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals], key=lambda e: (e[0], e[1]))
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


async def test_round_trip_presence_and_capacity(openai_up, redis_prefix, tmp_path):
    openai_up.default = echo(0.1)
    cfg = worker_config(openai_up.url, redis_prefix, worker_id="box-1", capacity=2)
    async with running_worker(cfg, tmp_path) as w, Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:
        # presence: what the worker is, where the dashboard reads it
        shown = await RedisPresence(REDIS_URL, prefix=f"{redis_prefix}presence:").workers()
        assert [x["id"] for x in shown] == ["acme:box-1"]
        assert shown[0]["capabilities"] == ["classify"] and shown[0]["locality"] == "local"
        assert shown[0]["capacity"] == 2 and 0 < shown[0]["ttl"] <= PRESENCE_TTL
        from click.testing import CliRunner

        from tierwise.cli import main

        (tmp_path / "w.yaml").write_text(yaml.safe_dump(cfg))
        listed = await asyncio.to_thread(CliRunner().invoke, main, ["worker", "-c", str(tmp_path / "w.yaml"),
                                                                     "--list"])  # its own event loop
        rec = orjson.loads(listed.output.splitlines()[0])
        assert (rec["id"], rec["tenant"], rec["capacity"], rec["models"]) == ("box-1", "acme", 2, ["small"])
        results = await asyncio.gather(*[d.dispatch("classify", f"task {i}") for i in range(10)])
        assert [r.text for r in results] == [f"echo:task {i}" for i in range(10)]
        assert {r.worker for r in results} == {"box-1"} and {r.locality for r in results} == {"local"}
        assert {r.model for r in results} == {"small-model"}
        assert len({r.task_id for r in results}) == 10
        # never more than `capacity` running at once on the worker (its own start/finish times)
        assert overlap([(r.raw["started"], r.raw["finished"]) for r in results]) <= 2
        assert len(openai_up.requests) == 10
        deadline = time.monotonic() + 10  # the caller may have its last result before the worker counts it
        while w.stats["done"] < 10 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert w.stats["done"] == 10
    # a worker that stopped (for good): its entries outlive it by their TTL (a restart is shorter: test_worker_restart),
    # and a task published meanwhile ends with NoWorker soon after they expire, not at its timeout
    async with Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:
        with pytest.raises(NoWorker, match="no worker serves capability 'classify'"):
            await d.dispatch("classify", "anyone?")


async def test_no_capable_worker_is_a_clear_error_not_a_hang(openai_up, redis_prefix, tmp_path):
    cfg = worker_config(openai_up.url, redis_prefix, worker_id="box-1")
    async with running_worker(cfg, tmp_path), Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:
        t0 = time.monotonic()
        with pytest.raises(NoWorker, match="no worker serves capability 'summarise' for tenant 'acme'"):
            await d.dispatch("summarise", "x", timeout=30)
        # another tenant's worker does not count either
        other = Dispatcher(REDIS_URL, tenant="globex", prefix=redis_prefix)
        with pytest.raises(NoWorker, match="tenant 'globex'"):
            await other.dispatch("classify", "x", timeout=30)
        await other.close()
        assert time.monotonic() - t0 < 10  # refused, not left to the 30 s timeout
    assert openai_up.requests == []


async def test_local_only_tasks_never_reach_a_remote_worker(openai_up, anthropic_up, redis_prefix, tmp_path):
    openai_up.default = echo()
    remote = worker_config(openai_up.url, redis_prefix, worker_id="cloud-1", locality="remote",
                           provider_locality="remote")
    # a worker that says it is local but whose model is remote is not trusted with local-only tasks either
    liar = worker_config(openai_up.url, redis_prefix, worker_id="liar-1", locality="local",
                         provider_locality="remote")
    async with running_worker(remote, tmp_path / "a"), running_worker(liar, tmp_path / "b"), \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, local_only=["classify"]) as d:
        with pytest.raises(NoWorker, match="no worker with locality local serves local-only capability 'classify'.*"
                                           "2 worker.*its model is not on a `locality: local` provider.*may not take local-only tasks"):
            await d.dispatch("classify", "patient record 123")
        assert openai_up.requests == []
        r = await d.dispatch("classify", "public text", local_only=False)  # not local-only: any worker
        assert r.text == "echo:public text"
        # a local worker joins: local-only tasks go to it and only to it
        local = worker_config(anthropic_up.url, redis_prefix, worker_id="gpu-1")
        local["providers"]["box"] = {"kind": "openai", "base_url": openai_up.url + "/v1", "locality": "local"}
        async with running_worker(local, tmp_path / "c"):
            got = await asyncio.gather(*[d.dispatch("classify", f"private {i}") for i in range(8)])
            assert {g.worker for g in got} == {"gpu-1"}


async def _queued(keys: Keyspace, n: int) -> None:
    """Until `n` tasks were added to the capability's streams (what the worker reads next is decided there)."""
    r = aredis.from_url(REDIS_URL)
    deadline = time.monotonic() + 20
    while sum([(await r.xinfo_stream(s))["entries-added"] for s in keys.streams("any", "classify")
               if await r.exists(s)]) < n:
        assert time.monotonic() < deadline, "the tasks were not published"
        await asyncio.sleep(0.01)
    await r.aclose()


async def test_priorities_high_first(openai_up, redis_prefix, tmp_path):
    # The first task holds the worker's one slot until the others are queued: with a fixed pause (0.05 s, and a
    # 0.15 s answer) a loaded machine queued `urgent` after the slot was free and a low task took it.
    busy = threading.Event()
    openai_up.script(Gate(busy, then=echo()))
    openai_up.default = echo()
    cfg = worker_config(openai_up.url, redis_prefix, worker_id="box-1", capacity=1)
    keys = Keyspace(redis_prefix, "acme")
    async with running_worker(cfg, tmp_path), Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:
        try:
            first = asyncio.create_task(d.dispatch("classify", "busy"))
            while not openai_up.requests:  # the worker's one slot is taken
                await asyncio.sleep(0.01)
            low = [asyncio.create_task(d.dispatch("classify", f"low {i}", priority="low")) for i in range(3)]
            await _queued(keys, 4)
            high = asyncio.create_task(d.dispatch("classify", "urgent", priority="high"))
            await _queued(keys, 5)
        finally:
            busy.set()
        done = await asyncio.gather(first, high, *low)
        order = sorted(done, key=lambda r: r.raw["started"])
        assert [r.text for r in order][:2] == ["echo:busy", "echo:urgent"]


async def test_back_pressure_and_payload_bound(openai_up, redis_prefix, tmp_path):
    # The first three are held upstream until the last three were refused: with a 0.3 s answer a loaded machine
    # sent some of the six after the first ones were done, and they were served.
    held = threading.Event()
    openai_up.default = Gate(held, then=echo())
    cfg = worker_config(openai_up.url, redis_prefix, worker_id="box-1", capacity=1)
    async with running_worker(cfg, tmp_path), \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, max_pending=3,
                       max_payload_bytes=4096) as d:
        try:
            tasks = [asyncio.create_task(d.dispatch("classify", f"t{i}")) for i in range(6)]
            deadline = time.monotonic() + 20
            while sum(t.done() for t in tasks) < 3:
                assert time.monotonic() < deadline, [t for t in tasks if t.done()]
                await asyncio.sleep(0.01)
        finally:
            held.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, Overloaded)]
        served = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(served) == 3 and len(refused) == 3
        assert "3 tasks queued or running (max_pending 3)" in refused[0].message
        with pytest.raises(RequestTooLarge, match="at most 4096"):
            await d.dispatch("classify", "x" * 5000)


async def test_malformed_entries_go_to_dead_letter_and_the_worker_carries_on(openai_up, redis_prefix, tmp_path):
    openai_up.default = echo()
    keys = Keyspace(redis_prefix, "acme")
    stream = keys.stream("any", "classify", "normal")
    r = aredis.from_url(REDIS_URL)
    # Entries stay with the worker that took them for 30 s (1 s in the other tests): a loop stalled past 1 s on a
    # loaded machine saw its own entries re-delivered to it, and dead-lettered them twice (6, not 4). What is
    # asserted is the worker's handling of bad entries, not re-delivery.
    cfg = worker_config(openai_up.url, redis_prefix, worker_id="box-1", max_payload_bytes=2048, visibility_timeout=30)
    async with running_worker(cfg, tmp_path) as w, Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:
        good_reply = keys.results("caller:someone", "any", "classify")  # (the queue's caller's)
        await r.xadd(stream, {"junk": "1"})  # no id
        await r.xadd(stream, {"id": "t-1", "reply": "elsewhere:key", "p": "{}"})  # reply outside the tenant
        await r.xadd(stream, {"id": "t-2", "reply": good_reply, "p": "not json"})
        await r.xadd(stream, {"id": "t-3", "reply": good_reply, "p": "x" * 3000})  # too large
        await r.xadd(stream, {"id": "t-4", "reply": good_reply, "p": orjson.dumps({"messages": "nope"})})
        # until all five were handled: four dead-lettered, three callers told (t-4's answer may come last)
        deadline = time.monotonic() + 60
        while await r.xlen(keys.dead("classify")) < 4 or await r.xlen(good_reply) < 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        dead = await r.xrange(keys.dead("classify"))
        reasons = [e[1][b"reason"].decode() for e in dead]
        assert any("task id is missing" in x for x in reasons)
        assert any("reply address" in x for x in reasons)
        assert any("not JSON" in x for x in reasons)
        assert any("more than max_payload_bytes" in x for x in reasons)
        # a well-formed entry whose payload is not a chat body is answered with an error, not dead-lettered
        answered = await r.xrange(good_reply)
        errors = [orjson.loads(e[1][b"r"]) for e in answered]
        assert any(e["error"]["status"] == 400 for e in errors)
        # the dead-lettered tasks with a valid reply address told their caller
        assert {e[1][b"id"].decode() for e in answered} >= {"t-2", "t-3", "t-4"}
        # and the worker still serves
        assert (await d.dispatch("classify", "still there?")).text == "echo:still there?"
        assert w.stats["dead"] == 4
        assert await r.xlen(stream) == 0  # nothing left behind
    await r.aclose()


async def test_task_that_keeps_dying_goes_to_dead_letter_and_its_caller_hears(openai_up, redis_prefix, tmp_path):
    openai_up.default = echo()
    keys = Keyspace(redis_prefix, "acme")
    stream = keys.stream("any", "classify", "normal")
    r = aredis.from_url(REDIS_URL)
    # ghost workers take the task and die with it, three times over (max_attempts 3)
    await r.zadd(keys.index("any", "classify"), {"ghost": int(time.time() * 1000) + 60_000})
    await r.xgroup_create(stream, GROUP, id="0", mkstream=True)
    async with Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:
        waiting = asyncio.create_task(d.dispatch("classify", "poison", timeout=30))
        got: list = []
        while not got:
            got = await r.xreadgroup(GROUP, "ghost", {stream: ">"}, count=1)
            await asyncio.sleep(0.02)
        entry_id = got[0][1][0][0]
        for i in range(2):  # each re-claim counts a delivery: 3 so far, the worker's own is the 4th
            await r.xclaim(stream, GROUP, f"ghost{i}", 0, [entry_id])
        await r.zrem(keys.index("any", "classify"), "ghost")
        cfg = worker_config(openai_up.url, redis_prefix, worker_id="box-1")
        async with running_worker(cfg, tmp_path) as w:
            with pytest.raises(TaskFailed, match="dead-letter stream: delivered 4 times"):
                await waiting
            assert w.stats["dead"] == 1
        dead = await r.xrange(keys.dead("classify"))
        assert len(dead) == 1 and dead[0][1][b"id"].startswith(b"task_")
        assert openai_up.requests == []  # never run
    await r.aclose()


async def test_python_api(openai_up, redis_prefix, tmp_path, monkeypatch):
    import tierwise.dispatch

    openai_up.default = echo()
    monkeypatch.setenv("TIERWISE_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("TIERWISE_TENANT", "acme")
    monkeypatch.setenv("TIERWISE_PREFIX", redis_prefix)
    async with running_worker(worker_config(openai_up.url, redis_prefix, worker_id="box-1"), tmp_path):
        r = await tierwise.dispatch("classify", "via the package", priority="high", timeout=10)
        assert r.text == "echo:via the package"
        body = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "chat body"}]}
        r = await tierwise.dispatch.dispatch("classify", body)
        assert r.text == "echo:chat body"
        await tierwise.dispatch._defaults[asyncio.get_running_loop()].close()


async def test_no_secret_in_results_or_worker_errors(openai_up, redis_prefix, tmp_path, monkeypatch):
    from tests.doubles import Fail

    secret = "sk-test-" + "q7Zr" * 8
    monkeypatch.setenv("BOX_API_KEY", secret)
    openai_up.default = Fail(500, f"upstream broke while holding key {secret}")
    cfg = worker_config(openai_up.url, redis_prefix, worker_id="box-1")
    cfg["providers"]["box"]["api_key_env"] = "BOX_API_KEY"
    async with running_worker(cfg, tmp_path), Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:
        # What crosses Redis, seen by a reader of our own blocked on the result stream (Redis serves it as the
        # result is added, before the caller reads and deletes it).
        name = f"{redis_prefix}reader"
        r = aredis.from_url(REDIS_URL, client_name=name)
        seen = asyncio.create_task(r.xread({d.results_key("any", "classify"): "0-0"}, block=120_000))
        # The read is blocked before the task goes (after a fixed 0.1 s a loaded machine sent it first: the caller
        # had read and deleted the result, and the read saw nothing).
        deadline = time.monotonic() + 20
        while not any(c.get("name") == name and c.get("cmd") == "xread" and "b" in c.get("flags", "")
                      for c in await r.client_list()):
            assert time.monotonic() < deadline, "the read never blocked"
            await asyncio.sleep(0.01)
        with pytest.raises(TaskFailed) as e:
            await d.dispatch("classify", "x")
        assert secret not in e.value.message and e.value.status >= 500
        [(_, raw)] = await seen
        await r.aclose()
        assert raw and all(secret.encode() not in v for _, f in raw for v in f.values())
    assert openai_up.requests[0].headers["authorization"] == f"Bearer {secret}"  # it was really used


def test_worker_command_prints_its_acl_and_refuses_configs_without_a_worker(tmp_path):
    from click.testing import CliRunner

    from tierwise.cli import main

    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump(worker_config("http://127.0.0.1:9", "tw:", worker_id="gpu-1")))
    out = CliRunner().invoke(main, ["worker", "-c", str(path), "--acl"])
    assert out.exit_code == 0, out.output
    line = out.output.strip()
    assert line.startswith("ACL SETUSER tierwise-worker-acme-local-classify-gpu-1 on ><password> resetkeys")
    assert "~tw:{acme}:q:local:classify:*" in line and "~tw:presence:acme:gpu-1)" in line
    assert "+hset" not in line  # no blackboard in this config: no access to its hash
    data = worker_config("http://127.0.0.1:9", "tw:", worker_id="gpu-1")
    data["blackboard"] = {"enabled": True, "key_prefix": "tw:board:"}
    path.write_text(yaml.safe_dump(data))
    out = CliRunner().invoke(main, ["worker", "-c", str(path), "--acl"])
    assert "+hset" in out.output and "~tw:board:workers:acme" in out.output and "+xlen" in out.output
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({"ledger": {"enabled": False}}))
    out = CliRunner().invoke(main, ["worker", "-c", str(plain)])
    assert out.exit_code == 2 and "no `dispatch.worker` section" in out.output


def test_worker_config_errors_name_the_file_and_the_key_the_user_wrote(tmp_path):
    # Before: "route 'capability:summarise': ... ensemble file not found" (a route nobody wrote),
    # and the unknown-model problem without the file or the section.
    from click.testing import CliRunner

    from tierwise.cli import main

    path = tmp_path / "worker.yaml"
    caps = {"summarise": {"ensemble": "summarise.yaml"}}
    path.write_text(yaml.safe_dump(worker_config("http://127.0.0.1:9", "tw:", worker_id="gpu-1", capabilities=caps)))
    out = CliRunner().invoke(main, ["worker", "-c", str(path)])
    assert out.exit_code == 2
    assert f"{path}: dispatch.worker.capabilities.summarise.ensemble: " in out.output, out.output
    assert "ensemble file not found" in out.output and "capability:summarise" not in out.output
    caps = {"classify": {"model": "nope"}}
    path.write_text(yaml.safe_dump(worker_config("http://127.0.0.1:9", "tw:", worker_id="gpu-1", capabilities=caps)))
    out = CliRunner().invoke(main, ["worker", "-c", str(path)])
    assert out.exit_code == 2
    assert f"{path}: dispatch.worker.capabilities: capability 'classify': unknown model 'nope'" in out.output


def test_worker_list_with_redis_away_is_one_line_not_a_traceback(tmp_path):
    from click.testing import CliRunner

    from tests.harness import free_port
    from tierwise.cli import main

    port = free_port()
    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump(worker_config("http://127.0.0.1:9", "tw:", worker_id="gpu-1",
                                                 redis_url=f"redis://u:hunter2@127.0.0.1:{port}/0")))
    out = CliRunner().invoke(main, ["worker", "-c", str(path), "--list"])
    assert out.exit_code == 1 and isinstance(out.exception, SystemExit), out.exception  # not ConnectionError
    assert f"Redis at 127.0.0.1:{port} did not answer" in out.output and "Traceback" not in out.output
    assert "hunter2" not in out.output


def test_dispatch_sync_from_code_without_an_event_loop(openai_up, redis_prefix, worker_processes, monkeypatch):
    import tierwise.dispatch

    openai_up.default = echo()
    monkeypatch.setenv("TIERWISE_PREFIX", redis_prefix)
    monkeypatch.setenv("TIERWISE_TENANT", "acme")
    monkeypatch.setenv("TIERWISE_REDIS_URL", REDIS_URL)  # (the fixtures' database: TIERWISE_TEST_REDIS_URL)
    worker_processes(worker_config(openai_up.url, redis_prefix, worker_id="box-1"), "w").wait_ready()
    assert tierwise.dispatch.dispatch_sync("classify", "from a script", timeout=10).text == "echo:from a script"


async def test_reclaim_finds_a_dead_workers_task_deep_in_the_pending_list(openai_up, redis_prefix, tmp_path):
    """XAUTOCLAIM looks at 10 pending entries per task it may claim: with one free slot and a long
    pending list of live tasks ahead, the dead worker's task is only found by carrying the scan on."""
    openai_up.default = echo()
    keys = Keyspace(redis_prefix, "acme")
    stream = keys.stream("any", "classify", "normal")
    reply = keys.results("caller:tester", "any", "classify")
    r = aredis.from_url(REDIS_URL)
    await r.xgroup_create(stream, GROUP, id="0", mkstream=True)
    body = orjson.dumps({"messages": [{"role": "user", "content": "orphan"}]})
    for i in range(30):
        await r.xadd(stream, {"id": f"live-{i}", "reply": reply, "p": body})
    await r.xadd(stream, {"id": "orphan", "reply": reply, "p": body})
    live = [e[0] for e in (await r.xreadgroup(GROUP, "live", {stream: ">"}, count=30))[0][1]]
    await r.xreadgroup(GROUP, "dead", {stream: ">"}, count=1)  # then it dies
    stop = asyncio.Event()

    async def keep_fresh() -> None:  # the live worker renews its claims, as a real one does
        while not stop.is_set():
            await r.xclaim(stream, GROUP, "live", 0, live, justid=True)
            await asyncio.sleep(0.1)

    fresh = asyncio.create_task(keep_fresh())
    cfg = worker_config(openai_up.url, redis_prefix, worker_id="box-1", capacity=1)
    try:
        async with running_worker(cfg, tmp_path) as w:
            deadline = time.monotonic() + 15
            while not await r.xlen(reply):
                assert time.monotonic() < deadline, "the orphaned task was never re-claimed"
                await asyncio.sleep(0.1)
            (_, fields), = await r.xrange(reply)
            assert fields[b"id"] == b"orphan" and w.stats["reclaimed"] == 1
    finally:
        stop.set()
        await fresh
        await r.aclose()
