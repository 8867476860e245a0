"""Browser and client reach, tried the way a web page, a rebinding attacker or a greedy client would.

A page on https://evil.example cannot make the user's loopback gateway spend the frontier key
(cross-origin fetch, `text/plain` bodies that skip the CORS preflight, DNS rebinding); a client
cannot attach MCP servers, containers, server tools or unlisted beta flags to the operator's
account; a scoped key cannot name a deployment directly to get around its routes.
"""

from __future__ import annotations

import json

import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.doubles import Reply, ToolCall
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config

ANT_BODY = {"model": "main", "max_tokens": 5, "messages": [{"role": "user", "content": "spend the key"}]}
OAI_BODY = {"model": "main", "messages": [{"role": "user", "content": "spend the key"}]}
EVIL = "https://evil.example"


def frontier_gw(gateway, openai_up, anthropic_up, **server):
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"], "cheap": ["local"]})
    cfg["server"] = {"default_route": "main", **server}
    anthropic_up.default = Reply(text="spent")
    openai_up.default = Reply(text="spent")
    return gateway(cfg)


def assert_anthropic_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    j = r.json()
    assert j["type"] == "error" and j["error"]["type"] and j["error"]["message"], j
    return j


def assert_openai_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    j = r.json()
    assert j["error"]["message"] and j["error"]["type"], j
    return j


# ---------------------------------------------------------------------------- web pages


def test_cross_origin_page_cannot_spend_the_key(gateway, openai_up, anthropic_up):
    g = frontier_gw(gateway, openai_up, anthropic_up)
    # What `fetch(url, {method: "POST", body: JSON.stringify(...)})` sends: no preflight needed.
    page = {"Origin": EVIL, "Content-Type": "text/plain;charset=UTF-8", "Sec-Fetch-Site": "cross-site"}
    r = httpx.post(g.url + "/v1/messages", headers=page, content=json.dumps(ANT_BODY))
    assert "evil.example" in assert_anthropic_error(r, 403)["error"]["message"]
    r = httpx.post(g.url + "/v1/chat/completions", headers=page, content=json.dumps(OAI_BODY))
    assert_openai_error(r, 403)
    # Even with a JSON content type (after a preflight the gateway would refuse anyway).
    r = httpx.post(g.url + "/v1/messages", headers={"Origin": EVIL}, json=ANT_BODY)
    assert_anthropic_error(r, 403)
    # A page in a sandboxed iframe or a file:// page says `Origin: null`.
    r = httpx.post(g.url + "/v1/messages", headers={"Origin": "null"}, json=ANT_BODY)
    assert_anthropic_error(r, 403)
    # <img>/<script> GETs carry no Origin, only Sec-Fetch-Site.
    r = httpx.get(g.url + "/v1/models", headers={"Sec-Fetch-Site": "cross-site"})
    assert_openai_error(r, 403)
    assert anthropic_up.requests == [] and openai_up.requests == []


def test_json_routes_refuse_non_json_bodies(gateway, openai_up, anthropic_up):
    g = frontier_gw(gateway, openai_up, anthropic_up)
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        r = httpx.post(g.url + "/v1/messages", headers={"Content-Type": ctype}, content=json.dumps(ANT_BODY))
        assert_anthropic_error(r, 415)
        r = httpx.post(g.url + "/v1/chat/completions", headers={"Content-Type": ctype}, content=json.dumps(OAI_BODY))
        assert_openai_error(r, 415)
    # A Blob body without a type: no Content-Type at all.
    r = httpx.post(g.url + "/v1/messages/count_tokens", content=json.dumps(ANT_BODY))
    assert_anthropic_error(r, 415)
    r = httpx.post(g.url + "/v1/embeddings", content=b'{"model":"cheap","input":"x"}')
    assert_openai_error(r, 415)
    assert anthropic_up.requests == [] and openai_up.requests == []
    r = httpx.post(g.url + "/v1/messages", headers={"Content-Type": "application/json; charset=utf-8"},
                   content=json.dumps(ANT_BODY))
    assert r.status_code == 200, r.text


def test_dns_rebinding_host_is_refused(gateway, openai_up, anthropic_up):
    g = frontier_gw(gateway, openai_up, anthropic_up)
    # The page's name now resolves to 127.0.0.1: same origin for the browser, foreign Host for us.
    for host in (f"evil.example:{g.port}", "evil.example", "localhost.evil.example", "127.0.0.1.nip.io"):
        r = httpx.post(g.url + "/v1/messages", headers={"Host": host}, json=ANT_BODY)
        assert_anthropic_error(r, 403)
        r = httpx.get(g.url + "/v1/models", headers={"Host": host})
        assert_openai_error(r, 403)
    assert anthropic_up.requests == []
    for host in (f"localhost:{g.port}", f"127.0.0.1:{g.port}", "[::1]", f"LOCALHOST.:{g.port}"):
        r = httpx.post(g.url + "/v1/messages", headers={"Host": host}, json=ANT_BODY)
        assert r.status_code == 200, (host, r.text)


def test_configured_hosts_and_origins_get_cors(gateway, openai_up, anthropic_up):
    app = "https://app.example"
    g = frontier_gw(gateway, openai_up, anthropic_up,
                    browser={"allowed_hosts": ["*.corp.example"], "allowed_origins": [app]})
    r = httpx.post(g.url + "/v1/messages", headers={"Host": "gw.corp.example"}, json=ANT_BODY)
    assert r.status_code == 200
    pre = httpx.options(g.url + "/v1/messages", headers={
        "Origin": app, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key,anthropic-version"})
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == app
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert "x-api-key" in pre.headers["access-control-allow-headers"]
    r = httpx.post(g.url + "/v1/messages", headers={"Origin": app, "Sec-Fetch-Site": "cross-site"}, json=ANT_BODY)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == app
    # The preflight of any other page is refused, so its browser never sends the request.
    pre = httpx.options(g.url + "/v1/messages", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers


def test_allow_non_json_turns_the_content_type_check_off(gateway, openai_up, anthropic_up):
    g = frontier_gw(gateway, openai_up, anthropic_up, browser={"allow_non_json": True})
    r = httpx.post(g.url + "/v1/messages", headers={"Content-Type": "text/plain"}, content=json.dumps(ANT_BODY))
    assert r.status_code == 200


# ---------------------------------------------------------------------------- what reaches the operator's account


def test_mcp_servers_and_their_beta_never_reach_the_upstream(gateway, openai_up, anthropic_up):
    g = frontier_gw(gateway, openai_up, anthropic_up)
    body = {**ANT_BODY, "mcp_servers": [{"type": "url", "url": "https://attacker.example/mcp", "name": "x"}]}
    r = httpx.post(g.url + "/v1/messages", headers={"anthropic-beta": "mcp-client-2025-04-04"}, json=body)
    assert "mcp_servers" in assert_anthropic_error(r, 400)["error"]["message"]
    with pytest.raises(anthropic.BadRequestError):
        ant(g).beta.messages.create(model="main", max_tokens=5, messages=ANT_BODY["messages"],
                                    betas=["code-execution-2025-05-22"],
                                    container="container_0123")  # type: ignore[call-arg]
    assert anthropic_up.requests == []


@pytest.mark.parametrize("tool_type", ["web_search_20250305", "web_fetch_20250910", "code_execution_20250825",
                                       "computer_20250124", "bash_20250124", "text_editor_20250728",
                                       "advisor_20260301", "mcp_toolset", 7])
def test_server_tools_are_refused(gateway, openai_up, anthropic_up, tool_type):
    g = frontier_gw(gateway, openai_up, anthropic_up)
    body = {**ANT_BODY, "tools": [{"type": tool_type, "name": "t"}]}
    r = httpx.post(g.url + "/v1/messages", json={**body, "stream": True})
    msg = assert_anthropic_error(r, 400)["error"]["message"]
    assert "server.forwarding.server_tools" in msg or not isinstance(tool_type, str)
    assert anthropic_up.requests == []


def test_allowed_server_tools_pass(gateway, openai_up, anthropic_up):
    g = frontier_gw(gateway, openai_up, anthropic_up, forwarding={"server_tools": ["web_search_*"]})
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 1},
             {"type": "custom", "name": "f", "input_schema": {"type": "object"}}]
    r = httpx.post(g.url + "/v1/messages", json={**ANT_BODY, "tools": tools})
    assert r.status_code == 200, r.text
    assert anthropic_up.requests[-1].body["tools"] == tools


def test_only_listed_betas_and_fields_are_forwarded(gateway, openai_up, anthropic_up):
    g = frontier_gw(gateway, openai_up, anthropic_up)
    betas = "claude-code-20250219, files-api-2025-04-14,oauth-2025-04-20,interleaved-thinking-2025-05-14"
    body = {**ANT_BODY, "service_tier": "auto", "inference_geo": "us", "context_management": {"edits": []}}
    for stream in (False, True):  # the non-streamed and the streamed pass-through alike
        r = httpx.post(g.url + "/v1/messages", headers={"anthropic-beta": betas}, json={**body, "stream": stream})
        assert r.status_code == 200, r.text
        sent = anthropic_up.requests[-1]
        assert sent.headers["anthropic-beta"] == "claude-code-20250219,interleaved-thinking-2025-05-14"
        assert "service_tier" not in sent.body and "inference_geo" not in sent.body
        assert sent.body["context_management"] == {"edits": []}
    # A beta header from an OpenAI-format client reaches an Anthropic upstream filtered too.
    r = httpx.post(g.url + "/v1/chat/completions", headers={"anthropic-beta": "files-api-2025-04-14"}, json=OAI_BODY)
    assert r.status_code == 200 and "anthropic-beta" not in anthropic_up.requests[-1].headers
    # count_tokens forwards the body to the Anthropic upstream: same policy.
    r = httpx.post(g.url + "/v1/messages/count_tokens", headers={"anthropic-beta": betas},
                   json={**body, "mcp_servers": []})
    assert_anthropic_error(r, 400)


def test_openai_clients_cannot_buy_priority_or_search(gateway, openai_up, anthropic_up):
    g = frontier_gw(gateway, openai_up, anthropic_up)
    c = oai(g)
    c.chat.completions.create(model="cheap", messages=OAI_BODY["messages"], service_tier="priority", store=True,
                              seed=7, extra_body={"audio": {"voice": "x"}})
    sent = openai_up.requests[-1].body
    assert "service_tier" not in sent and "store" not in sent and "audio" not in sent and sent["seed"] == 7
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="cheap", messages=OAI_BODY["messages"], web_search_options={})
    assert len(openai_up.requests) == 1


def test_forwarding_is_configurable(gateway, openai_up, anthropic_up):
    g = frontier_gw(gateway, openai_up, anthropic_up, forwarding={
        "anthropic_betas": ["*"], "anthropic_fields": ["mcp_servers", "service_tier"]})
    body = {**ANT_BODY, "mcp_servers": [], "service_tier": "standard_only"}
    r = httpx.post(g.url + "/v1/messages", headers={"anthropic-beta": "mcp-client-2025-04-04"}, json=body)
    assert r.status_code == 200, r.text
    sent = anthropic_up.requests[-1]
    assert sent.headers["anthropic-beta"] == "mcp-client-2025-04-04" and sent.body["service_tier"] == "standard_only"


@pytest.mark.parametrize("stream", [False, True])
def test_an_anthropic_system_field_on_an_openai_body_is_refused_not_ignored(gateway, openai_up, anthropic_up, stream):
    # Top-level `system` is Anthropic's; OpenAI's API refuses it ("Unrecognized request argument"). Dropped like an
    # unknown field, the instructions were lost without a word: the model answered as if it had none.
    g = frontier_gw(gateway, openai_up, anthropic_up)
    with pytest.raises(openai.BadRequestError) as e:
        oai(g).chat.completions.create(model="main", messages=OAI_BODY["messages"], stream=stream,
                                       extra_body={"system": "Answer only in French."})
    assert "role" in e.value.body["message"] and "system" in e.value.body["message"], e.value.body
    r = httpx.post(g.url + "/v1/responses", json={"model": "main", "input": "hi", "system": "Answer in French."})
    assert_openai_error(r, 400)
    assert "instructions" in r.json()["error"]["message"], r.text
    assert not openai_up.requests and not anthropic_up.requests
    # Empty is nothing lost: still dropped, as any unknown field.
    r = httpx.post(g.url + "/v1/chat/completions", json={**OAI_BODY, "system": None})
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------------------- scoped keys


def scoped_gw(gateway, openai_up, anthropic_up, monkeypatch, **server):
    monkeypatch.setenv("TEAM_KEY", "team-key-1")
    monkeypatch.setenv("ADMIN_KEY", "admin-key-1")
    keys = [{"env": "TEAM_KEY", "routes": ["cheap"]}, "ADMIN_KEY"]
    return frontier_gw(gateway, openai_up, anthropic_up, api_keys_env=keys, **server)


def test_scoped_key_cannot_name_a_deployment_or_another_route(gateway, openai_up, anthropic_up, monkeypatch):
    g = scoped_gw(gateway, openai_up, anthropic_up, monkeypatch)
    team = {"Authorization": "Bearer team-key-1"}
    # 404, as for a name that does not exist (review30d: a 403 told the key which names did)
    for model in ("frontier", "main", "no-such-model-falls-to-default"):
        r = httpx.post(g.url + "/v1/messages", headers={"x-api-key": "team-key-1"}, json={**ANT_BODY, "model": model})
        assert_anthropic_error(r, 404)
        r = httpx.post(g.url + "/v1/chat/completions", headers=team, json={**OAI_BODY, "model": model, "stream": True})
        assert_openai_error(r, 404)
        r = httpx.post(g.url + "/v1/messages/count_tokens", headers={"x-api-key": "team-key-1"},
                       json={"model": model, "messages": ANT_BODY["messages"]})
        assert_anthropic_error(r, 404)
    with pytest.raises(openai.NotFoundError):
        oai(g, api_key="team-key-1").chat.completions.create(model="frontier", messages=OAI_BODY["messages"])
    assert anthropic_up.requests == []
    ok = oai(g, api_key="team-key-1").chat.completions.create(model="cheap", messages=OAI_BODY["messages"])
    assert ok.choices[0].message.content == "spent"
    assert [m.id for m in oai(g, api_key="team-key-1").models.list()] == ["cheap"]
    # The unscoped key reaches everything.
    assert ant(g, api_key="admin-key-1").messages.create(model="frontier", max_tokens=5,
                                                         messages=ANT_BODY["messages"]).content[0].text == "spent"


def test_a_scoped_key_cannot_name_another_model_as_its_advisor(gateway, openai_up, anthropic_up, monkeypatch):
    """An advisor route takes Anthropic's advisor tool, whose `model` picks the advisor: a key limited to that
    route named `frontier` there (404 when named as the model) and the gateway called it as the advisor."""
    monkeypatch.setenv("TEAM_KEY", "team-key-1")
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "main": ["frontier"], "adv": {"policy": "advisor", "executor": "local", "advisor": "local", "max_uses": 2}})
    cfg["server"] = {"api_keys_env": [{"env": "TEAM_KEY", "routes": ["adv"]}]}
    g = gateway(cfg)
    body = {"model": "adv", "max_tokens": 20, "messages": [{"role": "user", "content": "task"}]}
    for named in ("frontier", "main"):
        openai_up.script(Reply(tool_calls=[ToolCall("advisor", {"question": "plan?"})]), Reply(text="advice"),
                         Reply(text="done"))
        msg = ant(g, api_key="team-key-1").messages.create(
            **body, tools=[{"type": "advisor_20260301", "name": "advisor", "model": named}])  # type: ignore[list-item]
        assert msg.content[-1].text == "done"
        assert anthropic_up.requests == []  # the route's own advisor (local) answered
    r = httpx.post(g.url + "/v1/messages", headers={"x-api-key": "team-key-1"}, json={**body, "model": "frontier"})
    assert_anthropic_error(r, 404)


def test_an_anthropic_executor_runs_the_advisor_tool_with_the_routes_advisor(gateway, openai_up, anthropic_up):
    """An Anthropic executor gets the client's advisor tool to run natively, which Anthropic bills to the
    operator's key: it went as sent (any model, any max_uses). It now names the route's advisor (its upstream
    model id) with at most the route's max_uses."""
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "adv": {"policy": "advisor", "executor": "frontier", "advisor": "frontier", "max_uses": 2}})
    cfg["server"] = {}
    g = gateway(cfg)
    anthropic_up.default = Reply(text="native")
    msg = ant(g).messages.create(model="adv", max_tokens=20, messages=[{"role": "user", "content": "task"}],
                                 tools=[{"type": "advisor_20260301", "name": "advisor",  # type: ignore[list-item]
                                         "model": "claude-opus-4-6", "max_uses": 50}])
    assert msg.content[0].text == "native"
    (sent,) = anthropic_up.requests
    assert sent.body["tools"] == [{"type": "advisor_20260301", "name": "advisor", "model": "big-model",
                                   "max_uses": 2}]


def test_direct_model_names_can_be_switched_off(gateway, openai_up, anthropic_up, monkeypatch):
    g = scoped_gw(gateway, openai_up, anthropic_up, monkeypatch, direct_models=False)
    with pytest.raises(anthropic.PermissionDeniedError):
        ant(g, api_key="admin-key-1").messages.create(model="frontier", max_tokens=5, messages=ANT_BODY["messages"])
    assert anthropic_up.requests == []
    assert ant(g, api_key="admin-key-1").messages.create(model="main", max_tokens=5,
                                                         messages=ANT_BODY["messages"]).content[0].text == "spent"
    assert "frontier" not in [m.id for m in oai(g, api_key="admin-key-1").models.list()]


def test_key_scopes_name_known_routes(tmp_path):
    from tests.harness import make_config
    from tierwise.errors import ConfigError

    cfg = two_tier_config("http://127.0.0.1:1", "http://127.0.0.1:2")
    cfg["server"] = {"api_keys_env": [{"env": "K", "routes": ["typo"]}]}
    with pytest.raises(ConfigError, match="typo"):
        make_config(cfg, tmp_path)


# ---------------------------------------------------------------------------- small ones


def test_405_says_which_methods_are_allowed(gateway, openai_up, anthropic_up):
    g = frontier_gw(gateway, openai_up, anthropic_up)
    r = httpx.get(g.url + "/v1/messages")
    assert_anthropic_error(r, 405)
    assert r.headers["allow"] == "POST"
    r = httpx.delete(g.url + "/v1/models")
    assert_openai_error(r, 405)
    assert r.headers["allow"] == "GET"


def test_health_says_less_without_a_key(gateway, openai_up, anthropic_up, monkeypatch):
    g = scoped_gw(gateway, openai_up, anthropic_up, monkeypatch)
    assert httpx.get(g.url + "/health").json() == {"status": "ok"}
    assert httpx.get(g.url + "/health", headers={"x-api-key": "wrong"}).json() == {"status": "ok"}
    j = httpx.get(g.url + "/health", headers={"x-api-key": "team-key-1"}).json()
    # the team's key (route `cheap`, which reaches `local`) sees what its route reaches, not the other deployments
    assert j["status"] == "ok" and j["routes"] == {"cheap": {"status": "ok"}} and j["deployments"] == {"local": "closed"}
    assert httpx.get(g.url + "/health", headers={"x-api-key": "admin-key-1"}).json()["deployments"] == {
        "local": "closed", "frontier": "closed"}
    g.gateway.deployments["frontier"].breaker.failure()
    for _ in range(5):
        g.gateway.deployments["frontier"].breaker.failure()
    assert httpx.get(g.url + "/health").json() == {"status": "degraded"}


def test_openapi_declares_security_schemes(gateway, openai_up, anthropic_up, monkeypatch):
    g = scoped_gw(gateway, openai_up, anthropic_up, monkeypatch)
    doc = httpx.get(g.url + "/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "x-api-key",
                                 "description": schemes["apiKey"]["description"]}
    assert {"bearer": []} in doc["security"]


def test_values_remembered_as_passing_open_no_door(gateway, openai_up, anthropic_up):
    """The guard's fast path remembers Host and Content-Type values that passed; a hostile request
    sent after many good ones (same connection, same values where it can) is still refused."""
    g = frontier_gw(gateway, openai_up, anthropic_up)
    with httpx.Client(base_url=g.url) as c:
        for _ in range(3):
            assert c.post("/v1/messages", json=ANT_BODY).status_code == 200
        n = len(anthropic_up.requests)
        # Same Host and Content-Type as the good requests, plus a browser's cross-site marks.
        assert_anthropic_error(c.post("/v1/messages", json=ANT_BODY, headers={"Origin": EVIL}), 403)
        assert_anthropic_error(c.post("/v1/messages", json=ANT_BODY, headers={"Sec-Fetch-Site": "cross-site"}), 403)
        # A rebinding name, and a body declared as text, after the good ones.
        assert_anthropic_error(c.post("/v1/messages", json=ANT_BODY, headers={"Host": "attacker.example:8080"}), 403)
        r = c.post("/v1/messages", content=json.dumps(ANT_BODY), headers={"Content-Type": "text/plain"})
        assert_anthropic_error(r, 415)
        # More distinct (acceptable) Host values than the guard remembers: still judged one by one.
        for i in range(80):
            assert c.post("/v1/messages", json=ANT_BODY, headers={"Host": f"127.0.0.{i % 250 + 1}"}).status_code == 200
        assert_anthropic_error(c.post("/v1/messages", json=ANT_BODY, headers={"Host": "evil.example"}), 403)
        assert len(anthropic_up.requests) == n + 80
