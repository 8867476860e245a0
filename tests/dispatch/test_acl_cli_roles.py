"""`tierwise worker --acl caller` and `--acl presence`: the caller's (gateway, application) and the presence reader's
ACL SETUSER lines for a config's tenant, prefix, caller name and database. Before, only the worker's line could be
printed; the others existed as Python functions and in docs/distributed.md, so an operator copied them by hand
(and, on a database other than 0, without `+select|n`). Also: a dashboard whose Redis user may not run SCAN logged
"Redis refused the SCAN script (ResponseError)", naming neither NOPERM nor the user it needs (session 35, newuser35b)."""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Callable

import pytest
import redis
import yaml
from click.testing import CliRunner

from tests.dispatch.conftest import echo, presence_confined, running_worker, worker_config
from tierwise.cli import main
from tierwise.dispatch.client import Dispatcher

DB = 13
ADMIN_URL = f"redis://127.0.0.1:6379/{DB}"


@pytest.fixture
def apply(db_acl_users: Callable[..., str]) -> Callable[[str], str]:
    """Applies a printed ACL SETUSER line as an operator would (a fresh name and password in place of the printed
    ones) and returns the redis URL that logs in as that user."""
    def applied(line: str) -> str:
        words = shlex.split(line)
        assert words[:2] == ["ACL", "SETUSER"] and words[3:5] == ["on", "><password>"], line
        return db_acl_users(words[5:])

    return applied


def _acl(path: str, *role: str) -> str:
    out = CliRunner().invoke(main, ["worker", "-c", path, "--acl", *role])
    assert out.exit_code == 0, out.output
    return out.output.strip()


async def test_the_caller_and_presence_lines_printed_from_a_gateway_config_work_and_reach_no_further(
        apply, openai_up, db_prefix, tmp_path):
    openai_up.default = echo()
    worker = worker_config(openai_up.url, db_prefix, worker_id="gpu-1", redis_url=ADMIN_URL, callers=["billing"])
    gateway = {"dispatch": {"redis_url": ADMIN_URL, "prefix": db_prefix, "tenant": "acme", "caller": "billing"}}
    (tmp_path / "worker.yaml").write_text(yaml.safe_dump(worker))
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(gateway))
    # `--acl` alone still prints the worker's line (and a gateway config without a worker section is refused there)
    assert shlex.split(_acl(str(tmp_path / "worker.yaml")))[2] == "tierwise-worker-acme-local-classify-gpu-1"
    caller_line = _acl(str(tmp_path / "gateway.yaml"), "caller")
    presence_line = _acl(str(tmp_path / "gateway.yaml"), "presence")
    assert shlex.split(caller_line)[2] == "tierwise-caller-acme-billing", caller_line
    assert shlex.split(presence_line)[2] == "tierwise-presence-acme", presence_line
    assert f"+select|{DB}" in caller_line.split() and f"+select|{DB}" in presence_line.split()
    caller_url, reader_url = apply(caller_line), apply(presence_line)
    async with running_worker(worker, tmp_path / "w"):
        async with Dispatcher(caller_url, tenant="acme", prefix=db_prefix, caller="billing") as d:
            got = await d.dispatch("classify", "hello", timeout=20)
        assert got.text == "echo:hello" and got.worker == "gpu-1"
        listing = dict(gateway, dispatch=dict(gateway["dispatch"], redis_url=reader_url))
        (tmp_path / "list.yaml").write_text(yaml.safe_dump(listing))
        out = await asyncio.to_thread(CliRunner().invoke, main, ["worker", "-c", str(tmp_path / "list.yaml"), "--list"])
        assert out.exit_code == 0 and '"id": "gpu-1"' in out.output, out.output
    caller, reader = redis.Redis.from_url(caller_url), redis.Redis.from_url(reader_url)
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):  # a named caller reads no task stream
            caller.xrange(f"{db_prefix}{{acme}}:q:any:classify:normal:other")  # (another caller's)
        with pytest.raises(redis.exceptions.NoPermissionError):  # nor another caller's results
            caller.xread({f"{db_prefix}{{acme}}:r:other:1:any:classify": 0})
        with pytest.raises(redis.exceptions.NoPermissionError):
            caller.scan(0)
        presence_confined(reader, db_prefix)
    finally:
        caller.close()
        reader.close()


def test_acl_caller_needs_a_dispatch_section(tmp_path):
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump({"ledger": {"enabled": False}}))
    out = CliRunner().invoke(main, ["worker", "-c", str(tmp_path / "plain.yaml"), "--acl", "caller"])
    assert out.exit_code == 2 and "no `dispatch` section" in out.output, out.output


async def test_a_dashboard_user_refused_scan_is_told_noperm_and_which_user(apply, db_prefix, tmp_path, caplog):
    from tierwise.observability.topology import RedisPresence

    gateway = {"dispatch": {"redis_url": ADMIN_URL, "prefix": db_prefix, "tenant": "acme", "caller": "billing"}}
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(gateway))
    caller_url = apply(_acl(str(tmp_path / "gateway.yaml"), "caller"))  # the gateway's own user, as many set it
    caplog.set_level(logging.WARNING, logger="tierwise")
    source = RedisPresence(caller_url, f"{db_prefix}presence:", "acme")
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            await source.read()
    finally:
        await source.aclose()
    said = [r.getMessage() for r in caplog.records if "SCAN script" in r.getMessage()]
    assert said and "NOPERM" in said[0] and "--acl presence" in said[0], said
    assert caller_url.split(":")[2].split("@")[0] not in " ".join(said)  # the password is never logged
