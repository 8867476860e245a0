"""Gateway keys, secrets never echoed, models/count_tokens/embeddings/health endpoints."""

from __future__ import annotations

import dataclasses
import logging

import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.doubles import Fail, Reply
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config


def test_gateway_keys(gateway, openai_up, anthropic_up, monkeypatch):
    monkeypatch.setenv("TW_CLIENT_KEY", "client-secret-123")
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["local"]})
    cfg["server"] = {"api_keys_env": ["TW_CLIENT_KEY"]}
    g = gateway(cfg)
    openai_up.default = Reply(text="ok")
    with pytest.raises(openai.AuthenticationError):
        oai(g, api_key="wrong").chat.completions.create(model="main", messages=[{"role": "user", "content": "q"}])
    with pytest.raises(anthropic.AuthenticationError):
        ant(g, api_key="wrong").messages.create(model="main", max_tokens=5,
                                                messages=[{"role": "user", "content": "q"}])
    assert oai(g, api_key="client-secret-123").chat.completions.create(
        model="main", messages=[{"role": "user", "content": "q"}]).choices[0].message.content == "ok"
    assert ant(g, api_key="client-secret-123").messages.create(
        model="main", max_tokens=5, messages=[{"role": "user", "content": "q"}]).content[0].text == "ok"
    assert openai_up.requests[-1].headers.get("authorization", "") != "Bearer client-secret-123"


def test_upstream_key_never_echoed_or_logged(gateway, openai_up, anthropic_up, monkeypatch, caplog):
    secret = "sk-ant-SECRETSECRETSECRET0123456789"
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", secret)
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]})
    cfg["providers"]["cloud"]["api_key_env"] = "FAKE_ANTHROPIC_KEY"
    g = gateway(cfg)
    assert g is not None
    anthropic_up.default = Fail(401, f"invalid x-api-key {secret}")
    caplog.set_level(logging.DEBUG)
    r = httpx.post(g.url + "/v1/messages", json={"model": "main", "max_tokens": 5,
                                                  "messages": [{"role": "user", "content": "q"}]})
    assert anthropic_up.requests[-1].headers["x-api-key"] == secret  # it was sent upstream...
    assert secret not in r.text  # ...but not echoed back
    assert secret[8:] not in r.text
    assert secret not in caplog.text
    g.flush()
    import json

    for rec in g.ledger.query():
        assert secret not in json.dumps(dataclasses.asdict(rec), default=str)


def test_models_endpoint_both_schemas(gateway, openai_up, anthropic_up):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    ids = [m.id for m in oai(g).models.list()]
    assert {"main", "local", "frontier"} <= set(ids)
    ids = [m.id for m in ant(g).models.list()]
    assert "main" in ids


def test_count_tokens(gateway, openai_up, anthropic_up):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["local"], "f": ["frontier"]}))
    n = ant(g).messages.count_tokens(model="main", messages=[{"role": "user", "content": "hello " * 100}])
    assert n.input_tokens > 50
    n2 = ant(g).messages.count_tokens(model="f", messages=[{"role": "user", "content": "hello " * 100}])
    assert n2.input_tokens > 0
    assert anthropic_up.requests[-1].path.endswith("/v1/messages/count_tokens")


def test_beta_query_and_headers_forwarded(gateway, openai_up, anthropic_up):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]}))
    anthropic_up.default = Reply(text="beta ok")
    r = httpx.post(g.url + "/v1/messages?beta=true",
                   headers={"anthropic-beta": "interleaved-thinking-2025-05-14", "anthropic-version": "2023-06-01"},
                   json={"model": "main", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]})
    assert r.status_code == 200 and r.json()["content"][0]["text"] == "beta ok"
    h = anthropic_up.requests[-1].headers
    assert h["anthropic-beta"] == "interleaved-thinking-2025-05-14" and h["anthropic-version"] == "2023-06-01"


def test_embeddings_proxied(gateway, openai_up, anthropic_up):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    e = oai(g).embeddings.create(model="local", input=["a", "b"])
    assert len(e.data) == 2 and len(e.data[0].embedding) > 0
    assert openai_up.requests[-1].body["model"] == "qwen-local"


def test_health(gateway, openai_up, anthropic_up):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    j = httpx.get(g.url + "/health").json()
    assert j["status"] == "ok" and j["deployments"]["local"] == "closed"


def test_health_counts_a_model_whose_api_key_is_not_set_as_unavailable(gateway, openai_up, anthropic_up,
                                                                        monkeypatch):
    # Before: "ok" everywhere on a fresh install with no ANTHROPIC_API_KEY, while every request to
    # the frontier model failed (a missing key never opens a breaker).
    monkeypatch.delenv("HEALTH_TEST_UNSET_KEY", raising=False)
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0},
                                  "claude": ["frontier"]})
    cfg["providers"]["cloud"]["api_key_env"] = "HEALTH_TEST_UNSET_KEY"
    g = gateway(cfg)
    j = httpx.get(g.url + "/health").json()
    assert j["routes"]["main"] == {"status": "degraded", "unavailable": ["frontier"]}
    assert j["routes"]["claude"] == {"status": "down", "unavailable": ["frontier"]}
    assert j["status"] == "degraded" and j["deployments"]["frontier"] == "closed"
    monkeypatch.setenv("HEALTH_TEST_UNSET_KEY", "sk-set-now")  # read per call: set it and it is back
    assert httpx.get(g.url + "/health").json()["status"] == "ok"


def test_thinking_blocks_pass_back_unmodified(gateway, openai_up, anthropic_up):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]}))
    anthropic_up.default = Reply(text="done")
    sig = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxGkaBY0gSbdfLDp4EiMP8+wgdoi8gmNt7LeYH0="
    msgs = [{"role": "user", "content": "think"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm, 2+2", "signature": sig},
                                              {"type": "text", "text": "4"}]},
            {"role": "user", "content": "and again?"}]
    ant(g).messages.create(model="main", max_tokens=2000, messages=msgs,
                           thinking={"type": "enabled", "budget_tokens": 1024})
    sent = anthropic_up.requests[-1].body["messages"][1]["content"][0]
    assert sent == {"type": "thinking", "thinking": "hmm, 2+2", "signature": sig}


def test_health_probes_a_local_server_nothing_ever_called(gateway, anthropic_up):
    # Before: "ok" with the local model server down, as long as no request had failed on it
    # (its breaker was closed: untried), while `tierwise doctor` said "cannot connect".
    from tests.harness import free_port

    g = gateway(two_tier_config(f"http://127.0.0.1:{free_port()}", anthropic_up.url,
                                routes={"main": ["local"], "claude": ["frontier"]}))
    j = httpx.get(g.url + "/health").json()
    assert j["local_servers"] == {"localsrv": "unreachable"}
    assert j["routes"]["main"] == {"status": "down", "unavailable": ["local"]}
    assert j["routes"]["claude"] == {"status": "ok"} and j["status"] == "degraded"
    assert j["deployments"] == {"local": "closed", "frontier": "closed"}  # nothing was tried


def test_health_probes_are_cached_and_one_at_a_time():
    import asyncio
    import socket

    from tierwise.config import ProviderConfig
    from tierwise.server.health import TTL_S, Reachability

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    now = [0.0]
    r = Reachability(clock=lambda: now[0])
    providers = {"box": ProviderConfig(kind="openai", base_url=f"http://127.0.0.1:{srv.getsockname()[1]}/v1",
                                       locality="local"),
                 "cloud": ProviderConfig(kind="openai", base_url="http://192.0.2.1/v1", locality="remote")}

    async def many() -> list[dict[str, str]]:
        return await asyncio.gather(*(r.local(providers) for _ in range(20)))

    try:
        first = asyncio.run(many())
        # twenty concurrent /health calls, one probe (the remote provider is never probed); the call
        # that started it waited for it, the others did not and said "unknown"
        assert r.probes == 1 and {"box": "reachable"} in first
        assert all(x in ({"box": "reachable"}, {"box": "unknown"}) for x in first)
        assert all(x == {"box": "reachable"} for x in asyncio.run(many()))
        assert r.probes == 1  # within TTL_S: the known answer
        srv.close()
        now[0] += TTL_S
        assert asyncio.run(r.local(providers)) == {"box": "unreachable"} and r.probes == 2
    finally:
        srv.close()
