"""What an error tells a client about the gateway's own network and config."""

from __future__ import annotations

import httpx2 as httpx

from tests.harness import free_port, two_tier_config


def test_an_unreachable_upstream_does_not_give_its_address_away(gateway, openai_up, anthropic_up, monkeypatch):
    monkeypatch.setenv("GW_KEY", "gw-key")
    port = free_port()  # nothing listens there: the connection is refused
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    cfg["providers"]["localsrv"]["base_url"] = f"http://svc-user:pw-123456@127.0.0.1:{port}/v1"
    cfg["server"]["api_keys_env"] = ["GW_KEY"]
    g = gateway(cfg)
    for path, body in (("/v1/chat/completions", {"model": "main", "messages": [{"role": "user", "content": "hi"}]}),
                       ("/v1/chat/completions", {"model": "main", "stream": True,
                                                 "messages": [{"role": "user", "content": "hi"}]}),
                       ("/v1/embeddings", {"model": "local", "input": "x"})):
        r = httpx.post(g.url + path, json=body, headers={"authorization": "Bearer gw-key"}, timeout=10)
        assert r.status_code == 502 and "cannot connect to provider 'localsrv'" in r.text, r.text
        for secret in (str(port), "svc-user", "pw-123456", "127.0.0.1"):
            assert secret not in r.text, (secret, r.text)
