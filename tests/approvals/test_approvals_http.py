"""Approval gates through the real gateway: official SDKs on loopback, doubles upstream."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai

from .conftest import ADMIN, GW_KEY, admin_get, approvals_config, decide, wait_pending

MSG = [{"role": "user", "content": "wire 5000 EUR to account 42"}]


@pytest.fixture
def gated(two_tier, monkeypatch, anthropic_up):
    monkeypatch.setenv("TW_ADMIN", ADMIN)
    monkeypatch.setenv("TW_GW", GW_KEY)
    anthropic_up.default = Reply(text="done", usage=(10, 5))

    def make(**gate: Any):
        return two_tier(server={"default_route": "main", "api_keys_env": ["TW_GW"], "admin_keys_env": ["TW_ADMIN"]},
                        approvals=approvals_config(**gate))

    return make


def test_approved_request_completes_and_the_ledger_says_who(gated):
    g = gated()
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: oai(g, api_key=GW_KEY).chat.completions.create(model="main", messages=MSG))
        [p] = wait_pending(g.url)
        assert not fut.done()  # it waits for the decision
        assert p["subject"] == "main" and p["kind"] == "route" and p["model"] == "main" and p["key"] == "TW_GW"
        assert "wire 5000 EUR" in p["preview"] and GW_KEY not in str(p) and ADMIN not in str(p)
        r = decide(g.url, p["id"], "approve", "ok by ops")
        assert r.status_code == 200 and r.json()["state"] == "approved"
        out = fut.result(timeout=10)
    assert out.choices[0].message.content == "done"
    assert admin_get(g.url).json()["pending"] == []
    again = decide(g.url, p["id"], "reject")  # decided once: a second decision is refused
    assert again.status_code == 409 and "already decided: approved" in again.json()["error"]["message"]
    g.flush()
    [rec] = g.ledger.query()
    assert rec.status == 200
    assert rec.extra["approval"]["approver"] == "admin:TW_ADMIN" and rec.extra["approval"]["reason"] == "ok by ops"
    assert any(s.get("name") == "approval" and "approved by admin:TW_ADMIN" in s.get("reason", "") for s in rec.steps)


def test_approved_stream_starts_after_the_decision(gated, openai_up):
    g = gated()
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: "".join(
            c.choices[0].delta.content or "" for c in oai(g, api_key=GW_KEY).chat.completions.create(
                model="main", messages=MSG, stream=True) if c.choices))
        [p] = wait_pending(g.url)
        assert p["facts"]["stream"] is True and not fut.done()
        decide(g.url, p["id"], "approve")
        assert fut.result(timeout=10) == "done"


def test_rejected_request_gets_a_clear_error_in_both_schemas(gated):
    g = gated()
    with ThreadPoolExecutor(2) as pool:
        fo = pool.submit(lambda: oai(g, api_key=GW_KEY).chat.completions.create(model="main", messages=MSG))
        [p] = wait_pending(g.url)
        decide(g.url, p["id"], "reject", "too much money")
        with pytest.raises(openai.PermissionDeniedError) as eo:
            fo.result(timeout=10)
        assert "approval rejected by admin:TW_ADMIN (too much money)" in eo.value.message
        # Anthropic, streaming: the wait happens before the stream starts, so the error is a plain 403.
        fa = pool.submit(lambda: list(ant(g, api_key=GW_KEY).messages.create(
            model="main", max_tokens=50, messages=MSG, stream=True)))
        [p] = wait_pending(g.url)
        assert p["facts"]["stream"] is True
        decide(g.url, p["id"], "reject", "no")
        with pytest.raises(anthropic.PermissionDeniedError) as ea:
            fa.result(timeout=10)
    assert ea.value.body["type"] == "error" and ea.value.body["error"]["type"] == "permission_error"
    assert "approval rejected" in ea.value.body["error"]["message"]
    g.flush()
    recs = g.ledger.query()
    assert [r.status for r in recs] == [403, 403]
    assert {r.extra["approval"]["state"] for r in recs} == {"rejected"}
    assert recs[0].extra["approval"]["reason"] == "too much money"
    assert recs[0].cost_usd in (0, None) and not [s for s in recs[0].steps if s.get("kind") == "call"]


def test_timeout_rejects(gated):
    g = gated(timeout=0.3)
    with pytest.raises(openai.PermissionDeniedError) as e:
        oai(g, api_key=GW_KEY).chat.completions.create(model="main", messages=MSG)
    assert "approval timed out" in e.value.message
    g.flush()
    [rec] = g.ledger.query()
    assert rec.status == 403 and rec.extra["approval"]["state"] == "timed_out"
    assert rec.extra["approval"]["approver"] == "timeout"


def test_pending_is_bounded_per_route(gated):
    g = gated(max_pending=2, max_pending_per_key=2)  # one key here: its share is the route's whole bound
    with ThreadPoolExecutor(2) as pool:
        futs = [pool.submit(lambda: oai(g, api_key=GW_KEY).chat.completions.create(model="main", messages=MSG))
                for _ in range(2)]
        pending = wait_pending(g.url, 2)
        with pytest.raises(openai.RateLimitError) as e:
            oai(g, api_key=GW_KEY).chat.completions.create(model="main", messages=MSG)
        assert "already wait for an approval" in e.value.message
        assert e.value.response.headers.get("retry-after")
        with pytest.raises(anthropic.RateLimitError):
            ant(g, api_key=GW_KEY).messages.create(model="main", max_tokens=10, messages=MSG)
        for p in pending:
            decide(g.url, p["id"], "approve")
        assert all(f.result(timeout=10).choices[0].message.content == "done" for f in futs)


def test_only_an_admin_key_may_list_or_decide(gated):
    g = gated()
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: oai(g, api_key=GW_KEY).chat.completions.create(model="main", messages=MSG))
        [p] = wait_pending(g.url)
        assert admin_get(g.url, key=GW_KEY).status_code == 403  # a gateway key is not an admin key
        assert httpx.get(g.url + "/v1/tierwise/approvals", timeout=5).status_code == 401
        # a key the gateway does not know is not called "a gateway key": 401, as on every other endpoint
        unknown = admin_get(g.url, key="not-a-key-of-this-gateway")
        assert unknown.status_code == 401 and "gateway key" not in unknown.json()["error"]["message"]
        assert unknown.json()["error"]["code"] == "invalid_api_key"
        denied = decide(g.url, p["id"], "approve", key=GW_KEY)
        assert denied.status_code == 403 and "admin key" in denied.json()["error"]["message"]
        assert admin_get(g.url).json()["pending"][0]["state"] == "pending"  # nothing was decided
        assert decide(g.url, "apr_nope", "approve").status_code == 404
        assert decide(g.url, p["id"], "maybe").status_code == 400
        decide(g.url, p["id"], "approve")
        fut.result(timeout=10)


def test_client_that_leaves_cancels_its_pending_entry(gated):
    g = gated()
    with pytest.raises(httpx.TimeoutException):
        httpx.post(g.url + "/v1/chat/completions", headers={"authorization": f"Bearer {GW_KEY}"},
                   json={"model": "main", "messages": MSG}, timeout=httpx.Timeout(5, read=0.5))
    deadline = time.monotonic() + 10
    while admin_get(g.url).json()["pending"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert admin_get(g.url).json()["pending"] == []
    g.flush()
    [rec] = g.ledger.query()
    assert rec.status == 499 and rec.extra["approval"]["state"] == "cancelled"


def test_preview_hides_secrets_and_what_privacy_protects(two_tier, monkeypatch, anthropic_up):
    monkeypatch.setenv("TW_ADMIN", ADMIN)
    anthropic_up.default = Reply(text="done")
    g = two_tier(server={"default_route": "main", "admin_keys_env": ["TW_ADMIN"]}, approvals=approvals_config(),
                 privacy={"ner": {"enabled": False}, "classes": {"pii": {}}, "policy": {"pii": "redact"}})
    secret = "sk-ant-api03-" + "A" * 40
    text = f"mail jane.doe@example.com the key {secret}"
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: oai(g).chat.completions.create(
            model="main", messages=[{"role": "user", "content": text}]))
        [p] = wait_pending(g.url)
        assert "jane.doe@example.com" not in p["preview"] and secret not in p["preview"]
        assert p["preview"] == "[user] mail <EMAIL_ADDRESS> the key [redacted]"
        decide(g.url, p["id"], "approve")
        fut.result(timeout=10)


def test_a_gated_route_reached_through_another_route_waits_too(two_tier, monkeypatch, anthropic_up):
    monkeypatch.setenv("TW_ADMIN", ADMIN)
    anthropic_up.default = Reply(text="done")
    g = two_tier(server={"default_route": "main", "admin_keys_env": ["TW_ADMIN"]}, approvals=approvals_config(),
                 routes={"main": {"policy": "fallback", "targets": ["frontier"]},
                         "outer": {"policy": "fallback", "targets": ["main", "local"]}})
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: list(oai(g).chat.completions.create(model="outer", messages=MSG, stream=True)))
        [p] = wait_pending(g.url)
        assert p["subject"] == "main" and p["model"] == "outer"
        decide(g.url, p["id"], "reject", "nested")
        with pytest.raises(openai.PermissionDeniedError, match="approval rejected"):  # not fallen back to `local`
            fut.result(timeout=10)
    g.flush()
    [rec] = g.ledger.query()
    assert rec.route == "outer" and rec.extra["approval"]["reason"] == "nested"


def test_gates_name_routes_not_models(tmp_path):
    from tests.harness import make_config, two_tier_config
    from tierwise.errors import ConfigError

    cfg = two_tier_config("http://127.0.0.1:9", "http://127.0.0.1:9", approvals={"routes": {"frontier": {}}})
    with pytest.raises(ConfigError, match="approvals.routes.frontier: 'frontier' is a model"):
        make_config(cfg, tmp_path)
    cfg["approvals"] = {"routes": {"main": {}}}
    with pytest.raises(ConfigError, match="approvals: approval gates need someone to decide them"):
        make_config(cfg, tmp_path)  # no admin key: nobody could approve
    cfg["server"]["admin_keys_env"] = ["TW_ADMIN"]
    cfg["approvals"] = {"routes": {"main": {"timeout": "forever"}}}
    with pytest.raises(ConfigError, match="approvals.routes.main.timeout"):
        make_config(cfg, tmp_path)


def test_embeddings_cannot_get_around_a_gate(two_tier, openai_up, monkeypatch):
    monkeypatch.setenv("TW_ADMIN", ADMIN)
    routes = {"main": {"policy": "fallback", "targets": ["local"]}, "open": {"policy": "fallback", "targets": ["local"]}}
    g = two_tier(server={"default_route": "main", "admin_keys_env": ["TW_ADMIN"]}, approvals=approvals_config(),
                 routes=routes)
    oai(g).embeddings.create(model="open", input="x")  # the same model through an ungated route: served
    assert len(openai_up.requests) == 1
    with pytest.raises(openai.BadRequestError, match="does not lead to an embedding model"):
        oai(g).embeddings.create(model="main", input="x")
    assert len(openai_up.requests) == 1


def test_approvals_api_without_an_admin_key_is_off_like_other_off_endpoints(two_tier):
    # Was a 403 "permission" error for every caller: nobody lacks permission, the API is not on.
    g = two_tier()
    for method in ("GET", "POST"):
        r = httpx.request(method, g.url + "/v1/tierwise/approvals", json={"id": "x", "decision": "approve"})
        assert r.status_code == 404, r.text
        err = r.json()["error"]
        assert err["type"] == "invalid_request_error" and {"param", "code"} <= set(err)
        assert "server.admin_keys_env" in err["message"]


def test_a_key_sent_as_the_model_or_a_tool_name_is_not_shown_to_approvers(gated):
    # review29f: the pending record kept the client's `model` and tool names as sent (the preview was scrubbed):
    # a client's key put there reached every admin reading the queue and the shared store.
    pasted = "sk-proj-" + "q7" * 20
    g = gated()
    tools = [{"type": "function", "function": {"name": pasted, "parameters": {"type": "object"}}}]
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: httpx.post(
            g.url + "/v1/chat/completions", timeout=20, headers={"authorization": f"Bearer {GW_KEY}"},
            json={"model": f"gpt {GW_KEY}", "messages": MSG, "tools": tools}))
        [p] = wait_pending(g.url)
        decide(g.url, p["id"], "reject")
        assert fut.result(timeout=10).status_code == 403
    assert "[redacted]" in p["model"] and p["facts"]["tools"] and "[redacted]" in p["facts"]["tools"][0]
    assert GW_KEY not in str(p) and pasted[:12] not in str(p), p
