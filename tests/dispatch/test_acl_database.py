"""Redis ACL rules on a database other than 0, as an operator applies them: redis-py sends `SELECT n` on every
connection of a `redis://…/n` URL, and the rules `tierwise worker --acl` printed (and docs/distributed.md showed for
callers) allowed no SELECT. A worker logged in with its printed rules on db 11 served nothing (`may read none of
its capabilities' task queues`, after logging that it "may not read" either zone) and a caller could not publish
(session 35, newuser35b). The rules now allow `SELECT` of the URL's database, and of no other."""

from __future__ import annotations

import pytest
import redis
import yaml
from click.testing import CliRunner

from tests.dispatch.conftest import echo, presence_confined, printed_rules, running_worker, worker_config
from tierwise.cli import main
from tierwise.dispatch.acl import caller_rules
from tierwise.dispatch.client import Dispatcher

DB = 11
ADMIN_URL = f"redis://127.0.0.1:6379/{DB}"


async def test_a_worker_and_a_caller_under_their_rules_serve_a_task_on_database_11(db_acl_users, openai_up,
                                                                                 db_prefix, tmp_path):
    openai_up.default = echo()
    data = worker_config(openai_up.url, db_prefix, worker_id="gpu-1", redis_url=ADMIN_URL)
    data["dispatch"]["redis_url"] = db_acl_users(printed_rules(data, tmp_path, "worker.yaml"))  # as an operator would
    caller_url = db_acl_users(caller_rules(db_prefix, "acme", db=DB))
    async with running_worker(data, tmp_path / "w"):
        async with Dispatcher(caller_url, tenant="acme", prefix=db_prefix) as d:
            got = await d.dispatch("classify", "hello", timeout=20)
    assert got.text == "echo:hello" and got.worker == "gpu-1"
    # the rules reach the configured database only
    other = db_acl_users(caller_rules(db_prefix, "acme", db=DB), db=12)
    with pytest.raises(redis.exceptions.NoPermissionError):
        redis.Redis.from_url(other).ping()


async def test_a_worker_with_a_wrong_password_says_so(db_acl_users, openai_up, db_prefix, tmp_path, caplog):
    """redis-py's AuthenticationError is a ConnectionError: a worker whose password was wrong logged "Redis at … is
    not reachable yet; retrying" (and `--list` "did not answer"), sending its operator after the network."""
    import asyncio
    import logging

    from tests.harness import make_config
    from tierwise.dispatch.worker import Worker
    from tierwise.server.build import build_gateway

    url = db_acl_users(caller_rules(db_prefix, "acme", db=DB))
    wrong = url.replace("@", "x@", 1)  # the right user, one character more in the password
    data = worker_config(openai_up.url, db_prefix, worker_id="gpu-1", redis_url=wrong)
    (tmp_path / "worker.yaml").write_text(yaml.safe_dump(data))
    out = await asyncio.to_thread(CliRunner().invoke, main, ["worker", "-c", str(tmp_path / "worker.yaml"), "--list"])
    assert out.exit_code == 1 and "refused the user name or password" in out.output, out.output
    cfg = make_config(data, tmp_path)
    gw = build_gateway(cfg)
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="tierwise.dispatch")
    task = asyncio.create_task(Worker(cfg, gw).run(stop, asyncio.Event()))
    try:
        for _ in range(400):  # the first failed try logs at once
            if any("gpu-1" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        said = [r.getMessage() for r in caplog.records if "gpu-1" in r.getMessage()]
        assert said and "refused the user name or password in dispatch.redis_url" in said[0], said
        assert "not reachable" not in said[0] and url.split(":")[2].split("@")[0] not in " ".join(said)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await gw.close()


async def test_the_dashboards_presence_user_lists_the_workers(db_acl_users, openai_up, db_prefix, tmp_path):
    """Neither a caller's rules nor a worker's let a user walk the presence records: a gateway logged in as its
    caller user showed no workers (`presence source unavailable (NoPermissionError)`), and a worker's own config
    could not `--list`. `presence_reader_rules` is what `presence_redis_url` and `--list` need, and no more."""
    import asyncio

    from tierwise.dispatch.acl import presence_reader_rules
    from tierwise.observability.topology import RedisPresence

    reader = db_acl_users(presence_reader_rules(db_prefix, "acme", db=DB))
    data = worker_config(openai_up.url, db_prefix, worker_id="gpu-1", redis_url=ADMIN_URL)
    async with running_worker(data, tmp_path / "w"):
        source = RedisPresence(reader, f"{db_prefix}presence:", "acme")
        try:
            got = [source._record(k, kind, raw, ttl) for k, kind, raw, ttl in await source.read()]
        finally:
            await source.aclose()
        assert [w["id"] for w in got] == ["acme:gpu-1"] and got[0]["capabilities"] == ["classify"], got
        listing = dict(data, dispatch=dict(data["dispatch"], redis_url=reader))
        (tmp_path / "list.yaml").write_text(yaml.safe_dump(listing))
        out = await asyncio.to_thread(CliRunner().invoke, main, ["worker", "-c", str(tmp_path / "list.yaml"), "--list"])
        assert out.exit_code == 0 and '"id": "gpu-1"' in out.output, out.output
    r = redis.Redis.from_url(reader)
    try:
        presence_confined(r, db_prefix)
    finally:
        r.close()
