"""What a client can learn of, or reach in, the gateway's own network, config and upstream account."""

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


def test_a_file_part_cannot_name_a_file_in_the_operators_account(two_tier, openai_up):
    """A `file` content part is carried to the upstream as sent: with `file_data` (checked) and a `file_id`
    next to it, the operator's account would be asked for the file the client named."""
    g = two_tier(routes={"main": ["local"]})
    part = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "file_id": "file-operator1"}}
    r = httpx.post(g.url + "/v1/chat/completions", json={"model": "main", "messages": [
        {"role": "user", "content": [part, {"type": "text", "text": "summarise"}]}]}, timeout=10)
    assert r.status_code == 400 and "file_id" in r.json()["error"]["message"], r.text
    assert openai_up.requests == []


def test_an_anthropic_block_cannot_name_a_file_in_the_operators_account(two_tier, anthropic_up):
    """Document and container-upload blocks are carried to an Anthropic upstream as sent: a Files API id in them
    would make the operator's account hand over a file the client named (the OpenAI `file_id` case, above). An
    inline document still goes through."""
    import anthropic
    import pytest

    from tests.doubles import Reply
    from tests.gateway.conftest import ant

    anthropic_up.default = Reply(text="read it")
    g = two_tier(routes={"main": ["frontier"]})
    client = ant(g)
    for block in ({"type": "document", "source": {"type": "file", "file_id": "file_operator1"}},
                  {"type": "container_upload", "file_id": "file_operator2"}):
        with pytest.raises(anthropic.BadRequestError) as e:
            client.messages.create(model="main", max_tokens=20, messages=[
                {"role": "user", "content": [block, {"type": "text", "text": "summarise"}]}])
        assert e.value.body["error"]["type"] == "invalid_request_error"
        assert "file ids" in e.value.body["error"]["message"]
    assert anthropic_up.requests == []
    inline = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "a short note"}}
    r = client.messages.create(model="main", max_tokens=20, messages=[
        {"role": "user", "content": [inline, {"type": "text", "text": "summarise"}]}])
    assert r.content[0].text == "read it"
    assert any(b.get("type") == "document" for m in anthropic_up.requests[-1].body["messages"] for b in m["content"]
               if isinstance(m["content"], list))
