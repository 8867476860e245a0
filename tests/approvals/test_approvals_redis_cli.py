"""Approvals shared by two gateway replicas through a real Redis, and the `tierwise approvals` CLI."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import anthropic
import orjson
import pytest
import yaml
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config
from tierwise.cli import main

from .conftest import ADMIN, REDIS_URL, admin_get, decide, needs_redis, wait_pending

MSG = [{"role": "user", "content": "deploy to production"}]


def replica_cfg(openai_up, anthropic_up, prefix: str, **gate):
    return two_tier_config(openai_up.url, anthropic_up.url, server={"default_route": "main", "admin_keys_env": ["TW_ADMIN"]},
                           approvals={"store": {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix,
                                                "recheck": 600},  # only a published notice wakes a waiter in time
                                      "routes": {"main": {"timeout": "30s", **gate}}})


@needs_redis
def test_approval_through_replica_b_releases_the_request_waiting_on_a(gateway, openai_up, anthropic_up,
                                                                        redis_prefix, monkeypatch):
    monkeypatch.setenv("TW_ADMIN", ADMIN)
    anthropic_up.default = Reply(text="shipped")
    a = gateway(replica_cfg(openai_up, anthropic_up, redis_prefix, max_pending=2))
    b = gateway(replica_cfg(openai_up, anthropic_up, redis_prefix, max_pending=2))
    with ThreadPoolExecutor(2) as pool:
        fa = pool.submit(lambda: ant(a).messages.create(model="main", max_tokens=20, messages=MSG))
        fb = pool.submit(lambda: oai(b).chat.completions.create(model="main", messages=MSG))
        pending = wait_pending(b.url, 2)  # B lists what waits on A too
        assert len(pending) == 2 and len({p["node"] for p in pending}) == 1  # one process, two apps
        with pytest.raises(anthropic.RateLimitError):  # the bound is shared: A sees B's waiting request
            ant(a).messages.create(model="main", max_tokens=20, messages=MSG)
        on_a = next(p for p in pending if p["facts"]["client_format"] == "anthropic")
        on_b = next(p for p in pending if p is not on_a)
        assert decide(b.url, on_a["id"], "approve", "release").json()["state"] == "approved"
        assert fa.result(timeout=10).content[0].text == "shipped"
        assert decide(a.url, on_b["id"], "reject", "not today").status_code == 200
        with pytest.raises(Exception) as e:
            fb.result(timeout=10)
        assert "approval rejected by admin:TW_ADMIN (not today)" in str(e.value)
    assert admin_get(a.url).json()["pending"] == [] == admin_get(b.url).json()["pending"]
    a.flush()
    [rec] = [r for r in a.ledger.query() if r.status == 200]
    assert rec.extra["approval"]["approver"] == "admin:TW_ADMIN" and rec.extra["approval"]["reason"] == "release"


@needs_redis
def test_redis_timeout_rejects(gateway, openai_up, anthropic_up, redis_prefix):
    g = gateway(replica_cfg(openai_up, anthropic_up, redis_prefix, timeout=0.3))
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        ant(g).messages.create(model="main", max_tokens=20, messages=MSG)
    assert "approval timed out" in e.value.body["error"]["message"]


def test_cli_lists_and_approves(gateway, openai_up, anthropic_up, tmp_path, monkeypatch):
    monkeypatch.setenv("TW_ADMIN", ADMIN)
    anthropic_up.default = Reply(text="ok")
    cfg = two_tier_config(openai_up.url, anthropic_up.url, server={"default_route": "main", "admin_keys_env": ["TW_ADMIN"]},
                          approvals={"routes": {"main": {"timeout": "30s"}}})
    g = gateway(cfg)
    (tmp_path / "tw.yaml").write_text(yaml.safe_dump(cfg))
    cli = ["approvals", "-c", str(tmp_path / "tw.yaml"), "--url", g.url]
    with ThreadPoolExecutor(2) as pool:
        f1 = pool.submit(lambda: oai(g).chat.completions.create(model="main", messages=MSG))
        wait_pending(g.url, 1)
        f2 = pool.submit(lambda: oai(g).chat.completions.create(model="main", messages=MSG))
        wait_pending(g.url, 2)
        listed = CliRunner().invoke(main, [*cli, "list", "--json"])
        assert listed.exit_code == 0, listed.output
        ids = [p["id"] for p in orjson.loads(listed.output)["pending"]]
        table = CliRunner().invoke(main, [*cli, "list"])
        assert table.exit_code == 0 and ids[0] in table.output and "route main" in table.output
        ok = CliRunner().invoke(main, [*cli, "approve", ids[0], "--reason", "looks fine"])
        assert ok.exit_code == 0 and "approved by admin:TW_ADMIN" in ok.output
        assert f1.result(timeout=10).choices[0].message.content == "ok"
        no = CliRunner().invoke(main, [*cli, "reject", ids[1], "--reason", "no"])
        assert no.exit_code == 0 and "rejected" in no.output
        with pytest.raises(Exception, match="approval rejected"):
            f2.result(timeout=10)
        monkeypatch.setenv("TW_ADMIN", "wrong")
        denied = CliRunner().invoke(main, [*cli, "list"])
        assert denied.exit_code != 0 and "401" in denied.output  # a key the gateway does not know


def test_cli_takes_its_options_after_the_subcommand_too(gateway, openai_up, anthropic_up, tmp_path, monkeypatch):
    # Before: `tierwise approvals list -c FILE --url URL` (where every other command takes -c) was "No such option".
    monkeypatch.setenv("TW_ADMIN", ADMIN)
    anthropic_up.default = Reply(text="ok")
    cfg = two_tier_config(openai_up.url, anthropic_up.url, server={"default_route": "main", "admin_keys_env": ["TW_ADMIN"]},
                          approvals={"routes": {"main": {"timeout": "30s"}}})
    g = gateway(cfg)
    (tmp_path / "tw.yaml").write_text(yaml.safe_dump(cfg))
    where = ["-c", str(tmp_path / "tw.yaml"), "--url", g.url]
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(lambda: oai(g).chat.completions.create(model="main", messages=MSG))
        wait_pending(g.url, 1)
        listed = CliRunner().invoke(main, ["approvals", "list", "--json", *where])
        assert listed.exit_code == 0, listed.output
        [pending] = orjson.loads(listed.output)["pending"]
        ok = CliRunner().invoke(main, ["approvals", "approve", pending["id"], *where, "--admin-key-env", "TW_ADMIN"])
        assert ok.exit_code == 0 and "approved by admin:TW_ADMIN" in ok.output, ok.output
        assert answer.result(timeout=10).choices[0].message.content == "ok"
    mixed = CliRunner().invoke(main, ["approvals", "-c", str(tmp_path / "tw.yaml"), "list", "--url", g.url])
    assert mixed.exit_code == 0 and "nothing waits" in mixed.output, mixed.output


def _redis_gateway(gateway, openai_up, anthropic_up, url: str):
    cfg = two_tier_config(openai_up.url, anthropic_up.url, server={"default_route": "main", "admin_keys_env": ["TW_ADMIN"]},
                          approvals={"store": {"backend": "redis", "redis_url": url, "recheck": 600},
                                     "routes": {"main": {"timeout": "30s"}}})
    return gateway(cfg)


def test_a_redis_restart_neither_loses_nor_leaks_a_pending_request(gateway, openai_up, anthropic_up, own_redis,
                                                                   monkeypatch):
    monkeypatch.setenv("TW_ADMIN", ADMIN)
    anthropic_up.default = Reply(text="after restart")
    # With persistence the record survives: the waiter resubscribes and the approval still releases it.
    server = own_redis(appendonly=True)
    g = _redis_gateway(gateway, openai_up, anthropic_up, server.url)
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: oai(g).chat.completions.create(model="main", messages=MSG))
        [p] = wait_pending(g.url)
        server.restart()
        assert [x["id"] for x in wait_pending(g.url)] == [p["id"]]
        assert decide(g.url, p["id"], "approve", "after the restart").status_code == 200
        assert fut.result(timeout=15).choices[0].message.content == "after restart"
    # Without persistence the record is gone: the request is rejected clearly, never let through.
    bare = own_redis(appendonly=False)
    g2 = _redis_gateway(gateway, openai_up, anthropic_up, bare.url)
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: oai(g2).chat.completions.create(model="main", messages=MSG))
        wait_pending(g2.url)
        bare.restart()
        with pytest.raises(Exception, match="vanished from the approval store") as e:
            fut.result(timeout=15)
    assert getattr(e.value, "status_code", None) == 403
    g2.flush()
    assert [r.extra["approval"]["state"] for r in g2.ledger.query() if r.status == 403] == ["lost"]
