"""Every HTTP route of the gateway, called with no key, with a gateway key of the tenant whose data it is, with
another tenant's key, with a dashboard viewer key and with an admin key (authz36).

The table below is docs/security.md's "Route inventory" as status codes: a route added to the app without a
line here fails `test_every_route_is_in_the_inventory`, so its auth is decided, written down and tried. Real
HTTP on loopback against one gateway with every surface on (dashboard, metrics, cache, budgets, approvals).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import oai

ROUTES = {
    "a": {"policy": "fallback", "targets": ["local"], "retries": 0},
    "b": {"policy": "fallback", "targets": ["local"], "retries": 0},
    "main": {"policy": "fallback", "targets": ["local"], "retries": 0},
}
KEYS = {"none": None, "owner": "key-team-b", "other": "key-team-a", "viewer": "key-view", "admin": "key-adm"}
CHAT = {"model": "b", "messages": [{"role": "user", "content": "hi"}], "input": "hi", "max_tokens": 5}
MODEL = {"owner": 200, "other": 404, "none": 401, "viewer": 401, "admin": 401}  # the model-bound routes
OPERATORS = {"none": 401, "owner": 403, "other": 403, "viewer": 200, "admin": 200}  # gateway-wide views
CLIENTS = {"none": 401, "owner": 200, "other": 200, "viewer": 200, "admin": 200}  # each reads its own part
PUBLIC = dict.fromkeys(KEYS, 200)
ADMINS = {"none": 401, "owner": 403, "other": 403, "viewer": 401, "admin": 200}
# (method, path): the status each caller gets. `RID` in a path or body is replaced by the owner's request id.
MATRIX: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    ("HEAD", "/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/v1/models"): {**MODEL, "other": 200},
    ("GET", "/models"): {**MODEL, "other": 200},
    ("GET", "/v1/models/b"): MODEL,  # (answered by App.no_route: GET /v1/models/{id})
    ("POST", "/v1/chat/completions"): MODEL,
    ("POST", "/chat/completions"): MODEL,
    ("POST", "/v1/messages"): MODEL,
    ("POST", "/v1/responses"): MODEL,
    ("POST", "/responses"): MODEL,
    ("POST", "/v1/messages/count_tokens"): MODEL,
    ("POST", "/v1/responses/input_tokens"): MODEL,
    ("POST", "/responses/input_tokens"): MODEL,
    ("POST", "/v1/embeddings"): MODEL,
    ("POST", "/v1/tierwise/feedback"): MODEL,  # on the owner's request id: another key's is an unknown id
    ("GET", "/v1/tierwise/budgets"): CLIENTS,
    ("GET", "/v1/tierwise/blackboard"): OPERATORS,
    ("GET", "/v1/tierwise/cache"): OPERATORS,
    ("POST", "/v1/tierwise/cache/invalidate"): {**CLIENTS, "viewer": 403},
    ("GET", "/v1/tierwise/approvals"): ADMINS,
    ("POST", "/v1/tierwise/approvals"): {**ADMINS, "admin": 404},  # (an id no pending approval has)
    ("GET", "/metrics"): OPERATORS,
    ("GET", "/dashboard"): PUBLIC,
    ("GET", "/dashboard/static/dashboard.js"): PUBLIC,
    ("GET", "/dashboard/api/role"): CLIENTS,
    ("GET", "/dashboard/api/recent"): CLIENTS,
    ("GET", "/dashboard/api/trace?id=RID"): {**CLIENTS, "other": 404},
    ("GET", "/dashboard/api/stream"): CLIENTS,
    ("GET", "/dashboard/api/summary"): OPERATORS,
    ("GET", "/dashboard/api/topology"): OPERATORS,
}
BODIES = {"/v1/tierwise/feedback": {"request_id": "RID", "rating": "good"}, "/v1/tierwise/cache/invalidate": {},
          "/v1/tierwise/approvals": {"id": "apr_nothing", "decision": "approve"}}


@pytest.fixture
def gateway_with_everything(two_tier, openai_up, monkeypatch) -> Any:
    for env, value in (("TEAM_A", "key-team-a"), ("TEAM_B", "key-team-b"), ("ADM", "key-adm"), ("VIEW", "key-view")):
        monkeypatch.setenv(env, value)
    keys = [{"env": "TEAM_A", "routes": ["a"]}, {"env": "TEAM_B", "routes": ["b"]}]
    openai_up.default = Reply(text="b's answer")
    return two_tier(routes=ROUTES, server={"default_route": "main", "api_keys_env": keys, "admin_keys_env": ["ADM"]},
                    cache={"enabled": True}, approvals={"routes": {"main": {"timeout": "30s"}}},
                    budgets={"limits": [{"name": "all", "usd": 100}]},
                    observability={"metrics": {"enabled": True},
                                   "dashboard": {"enabled": True, "viewer_keys_env": ["VIEW"]}})


def _call(g: Any, method: str, path: str, key: str | None, rid: str) -> tuple[int, str]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    url = g.url + path.replace("RID", rid)
    if path.endswith("/stream"):  # a live stream: its status, then leave
        with httpx.stream(method, url, headers=headers, timeout=5) as r:
            return r.status_code, "" if r.status_code == 200 else r.read().decode()
    body = BODIES.get(path, CHAT)
    body = {k: (rid if v == "RID" else v) for k, v in body.items()}
    r = httpx.request(method, url, headers=headers, json=body if method == "POST" else None, timeout=10)
    return r.status_code, r.text


def test_every_route_is_in_the_inventory(gateway_with_everything):
    mounted = {(m, p) for m, p in gateway_with_everything.app.routes if not p.startswith("/dashboard/static/")}
    listed = {(m, p.split("?")[0]) for m, p in MATRIX}
    assert mounted - listed == set(), "routes with no line in MATRIX and docs/security.md's route inventory"
    doc = Path(__file__).parents[2].joinpath("docs", "security.md").read_text()
    section = doc.split("## Route inventory", 1)[1].split("\n## ", 1)[0]
    for _, path in listed:
        if path not in ("/", "/dashboard/static/dashboard.js", "/v1/models/b"):
            last = path.rsplit("/", 1)[-1]
            assert re.search(re.escape(path) + r"\b|/" + re.escape(last) + r"\b", section), path


def test_each_caller_gets_what_the_inventory_says(gateway_with_everything):
    g = gateway_with_everything
    r = oai(g, api_key="key-team-b").chat.completions.with_raw_response.create(
        model="b", messages=[{"role": "user", "content": "team b's own question"}])
    rid = r.headers["x-tierwise-request-id"]
    g.flush()
    wrong = []
    for (method, path), expected in MATRIX.items():
        for who, key in KEYS.items():
            status, text = _call(g, method, path, key, rid)
            if status != expected[who]:
                wrong.append((who, method, path, status, expected[who], text[:160]))
            if who in ("other", "none") and method == "GET" and "/dashboard/api/" in path:
                assert rid not in text, (who, path)  # the owner's request stays the owner's
            if status >= 400 and method != "HEAD" and path != "/metrics":
                assert "error" in text, (who, path, text[:200])  # in an API's error schema, never bare
    assert wrong == []
