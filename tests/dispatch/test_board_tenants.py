"""The workers' blackboard hash is a tenant's own: every tenant's workers published into one hash
(`<key_prefix>workers`), which every tenant's gateways read, and each worker's printed ACL (`tierwise worker
--acl`) gave it HSET, HDEL and DEL on it. A hostile worker of tenant acme could then set the queue depth another
tenant's gateways route on, and erase (DEL, or 2 MiB planted: the gateways' exchange drops the hash) the statistics
of every other tenant's workers (session 35, review35d). ACL users are made on the shared Redis and deleted after."""

from __future__ import annotations

import json
import shlex
import types

import pytest
import redis
import redis.asyncio as aredis
import yaml
from click.testing import CliRunner

from tests.dispatch.conftest import REDIS_URL, worker_config
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401 (the same fixture)
from tests.harness import make_config
from tierwise.cli import main
from tierwise.dispatch.blackboard import build

pytestmark = pytest.mark.asyncio


def _config(upstream: str, prefix: str, tenant: str, board: dict[str, object], *, worker: bool, tmp_path):
    data = worker_config(upstream, prefix, worker_id=f"{tenant}-w", tenant=tenant, locality="remote",
                         provider_locality="remote")
    data["blackboard"] = board
    if not worker:
        del data["dispatch"]["worker"]
    return data, make_config(data, tmp_path)


async def test_a_tenants_worker_neither_sets_nor_erases_another_tenants_worker_statistics(acl_users,  # noqa: F811
                                                                                         redis_prefix, tmp_path):
    board = {"enabled": True, "key_prefix": redis_prefix + "board:", "timeout": 30}
    up = "http://127.0.0.1:9"
    # acme's worker, logged in with exactly the rules `tierwise worker --acl` prints for its config
    acme_data, _ = _config(up, redis_prefix, "acme", board, worker=True, tmp_path=tmp_path)
    (tmp_path / "acme.yaml").write_text(yaml.safe_dump(acme_data))
    out = CliRunner().invoke(main, ["worker", "-c", str(tmp_path / "acme.yaml"), "--acl"])
    assert out.exit_code == 0, out.output
    rules = shlex.split(out.output)[5:]
    hostile = aredis.from_url(acl_users(rules))
    # (key patterns stand in selectors since session 36: `(+hset … ~<key>)`)
    board_keys = sorted({w[1:] for r in rules for w in r.strip("()").split() if w.startswith("~" + redis_prefix + "board:")})
    assert board_keys  # it may publish somewhere: its own tenant's gateways read its queue depth
    # globex: one honest worker reporting a queue of 3 for `small`, and a gateway reading the board
    _, globex_worker_cfg = _config(up, redis_prefix, "globex", board, worker=True, tmp_path=tmp_path)
    _, globex_gateway_cfg = _config(up, redis_prefix, "globex", board, worker=False, tmp_path=tmp_path)
    honest = build(globex_worker_cfg, {"small": types.SimpleNamespace(breaker=None)})
    honest.own["small"].queue_depth = 3
    gateway = build(globex_gateway_cfg, {"small": types.SimpleNamespace(breaker=None)})
    admin = aredis.from_url(REDIS_URL)
    await honest.start()
    await gateway.start()
    try:
        await gateway.exchange()
        assert gateway.value("small", "queue_depth") == 3
        # 1. a forged queue depth, stamped with Redis's clock, into every board key acme's worker may write
        now_ms = int((await admin.time())[0]) * 1000
        forged = json.dumps({"models": {"small": {"w": 1, "queue_depth": 1e9}}})
        for key in board_keys:
            await hostile.hset(key, "evil", f"{now_ms} {forged}")
        await gateway.exchange()
        assert gateway.value("small", "queue_depth") == 3, "acme's worker set globex's queue depth"
        # 2. erased: DEL, or more than the workers' hash may hold (the gateways' exchange then drops it whole)
        for key in board_keys:
            await hostile.delete(key)
            pad = f"{now_ms} " + json.dumps({"models": {"small": {"w": 1, "pad": "x" * (250 << 10)}}})
            await hostile.hset(key, mapping={f"pad{i}": pad for i in range(10)})
        for key in (redis_prefix + "board:replicas",):  # (never its to write)
            with pytest.raises(redis.exceptions.NoPermissionError):
                await hostile.delete(key)
        await gateway.exchange()
        assert gateway.value("small", "queue_depth") == 3, "acme's worker erased globex's workers' statistics"
        assert "small" in gateway.peers
    finally:
        await honest.close()
        await gateway.close()
        keys = [k async for k in admin.scan_iter(match=redis_prefix + "board:*")]
        if keys:
            await admin.delete(*keys)
        await hostile.aclose()
        await admin.aclose()


async def test_a_board_prefix_with_glob_characters_names_one_key_in_the_rules(acl_users, redis_prefix):  # noqa: F811
    """`blackboard.key_prefix` may hold `*`, `?`, `[` (only spaces are refused): the printed pattern was the name as
    written, a glob: it refused the worker's own hash and let it HSET, HDEL and DEL other keys it matched."""
    from tierwise.dispatch.acl import worker_rules
    from tierwise.dispatch.blackboard import workers_key

    board = workers_key(redis_prefix + "b*[a]?:", "acme")
    user = aredis.from_url(acl_users(worker_rules(redis_prefix, "acme", "remote", ["classify"], board, "w1")))
    try:
        await user.hset(board, "w1", "x")  # its own board hash: allowed
        for other in (redis_prefix + "bX[a]?:workers:acme", redis_prefix + "bXa?:workers:acme",
                      redis_prefix + "b*[a]Z:workers:acme"):
            with pytest.raises(redis.exceptions.NoPermissionError):
                await user.hset(other, "w1", "x")
    finally:
        await user.aclose()
