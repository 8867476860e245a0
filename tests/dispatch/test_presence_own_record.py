"""A named worker's printed ACL (`tierwise worker --acl` with `dispatch.worker.id`) reaches its own presence record
only. With the tenant's whole presence prefix (`presence:<tenant>:*`) a hostile worker planted junk records, and the
dashboard and `tierwise worker --list` read at most 500 presence keys: 20,000 junk records hid the real workers
from both; it could also delete the other workers' records (session 35, review35d). ACL users are made on the
shared Redis and deleted after."""

from __future__ import annotations

import orjson
import pytest
import redis
import redis.asyncio as aredis
import yaml
from click.testing import CliRunner

from tests.dispatch.conftest import REDIS_URL, printed_rules, running_worker, worker_config
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401 (the same fixture)
from tierwise.cli import main
from tierwise.dispatch.keys import Keyspace
from tierwise.dispatch.presence import records


@pytest.mark.asyncio
async def test_a_named_workers_rules_reach_its_own_presence_record_only(acl_users, openai_up,  # noqa: F811
                                                                        redis_prefix, tmp_path):
    keys = Keyspace(redis_prefix, "acme")
    honest = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote")
    honest["dispatch"]["redis_url"] = acl_users(printed_rules(honest, tmp_path, "w1.yaml"))
    other = worker_config(openai_up.url, redis_prefix, worker_id="w2", locality="remote", provider_locality="remote")
    hostile = aredis.from_url(acl_users(printed_rules(other, tmp_path, "w2.yaml")))
    admin = aredis.from_url(REDIS_URL)
    try:
        async with running_worker(honest, tmp_path / "w") as w:  # it renews its own record under these rules
            assert w.id == "w1"
            assert await admin.exists(keys.presence("w1"))  # (written before the worker says it is ready)
            await hostile.set(keys.presence("w2"), orjson.dumps({"id": "w2"}), px=10_000)  # its own: allowed
            with pytest.raises(redis.exceptions.NoPermissionError):  # junk enough to hide the others
                await hostile.set(keys.presence("junk-0"), orjson.dumps({"id": "junk-0"}))
            with pytest.raises(redis.exceptions.NoPermissionError):  # another worker's record
                await hostile.delete(keys.presence("w1"))
            listed = [r["id"] for r in await records(admin, keys)]
            assert listed == ["w1", "w2"]
    finally:
        await hostile.aclose()
        await admin.aclose()


def test_an_unnamed_workers_rules_reach_its_kind_of_workers_records_only_and_say_so(tmp_path):
    """(Until session 37 they reached the tenant's whole presence prefix: test_worker_presence_forgery.py.)"""
    from tierwise.dispatch.keys import unnamed_tag

    data = worker_config("http://127.0.0.1:9", "tw:", worker_id="gpu-1")
    del data["dispatch"]["worker"]["id"]
    (tmp_path / "worker.yaml").write_text(yaml.safe_dump(data))
    out = CliRunner().invoke(main, ["worker", "-c", str(tmp_path / "worker.yaml"), "--acl"])
    assert out.exit_code == 0 and f"~tw:presence:acme:{unnamed_tag('local', ['classify'])}-*)" in out.stdout
    assert "~tw:presence:acme:*" not in out.stdout
    assert "no dispatch.worker.id" in out.stderr
    out = CliRunner().invoke(main, ["worker", "-c", str(tmp_path / "worker.yaml"), "--acl", "--id", "gpu-7"])
    assert "~tw:presence:acme:gpu-7)" in out.stdout and "presence:acme:*" not in out.stdout and not out.stderr
    assert "ACL SETUSER tierwise-worker-acme-local-classify-gpu-7 on" in out.stdout
