"""The gateway's admin and observability surfaces attacked with the keys a client really holds:
a team's key limited to some routes, a viewer key, an unscoped gateway key. Real HTTP on loopback
against a real gateway; each test reads what an attacker would read and asserts it is refused.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx
import pytest

from tests.doubles import Raw, Reply
from tests.gateway.conftest import oai

MSG = [{"role": "user", "content": "team b's confidential question"}]
TEAMS = {
    "a": {"policy": "fallback", "targets": ["local"], "retries": 0},
    "b": {"policy": "fallback", "targets": ["local"], "retries": 0},
}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture
def teams(two_tier, monkeypatch) -> Any:
    """A gateway with two team keys (each limited to its route), an unscoped key and a viewer key."""
    for env, value in (("TEAM_A", "key-team-a"), ("TEAM_B", "key-team-b"), ("OPS", "key-ops"),
                       ("VIEW", "key-view")):
        monkeypatch.setenv(env, value)
    keys = [{"env": "TEAM_A", "routes": ["a"]}, {"env": "TEAM_B", "routes": ["b"]}, "OPS"]
    return two_tier(routes=TEAMS, server={"api_keys_env": keys},
                    observability={"metrics": {"enabled": True},
                                   "dashboard": {"enabled": True, "viewer_keys_env": ["VIEW"]}})


def test_a_team_key_cannot_read_other_teams_requests_on_the_dashboard(teams, openai_up):
    openai_up.script(Reply(text="b's answer"))
    r = oai(teams, api_key="key-team-b").chat.completions.with_raw_response.create(model="b", messages=MSG)
    rid = r.headers["x-tierwise-request-id"]
    teams.flush()
    # A key sees its own requests only (server/roles.py; more in test_dashboard_roles.py); the gateway-wide
    # views (totals, topology, metrics) need an admin or viewer key.
    for path in ("/dashboard/api/recent", f"/dashboard/api/trace?id={rid}", "/dashboard/api/summary",
                 "/dashboard/api/topology", "/metrics"):
        got = httpx.get(teams.url + path, headers=bearer("key-team-a"), timeout=5)
        assert got.status_code in (200, 403, 404), (path, got.status_code, got.text[:300])
        assert rid not in got.text
        if got.status_code != 200:
            assert got.json()["error"]["type"] == "invalid_request_error"  # OpenAI schema: a 403 says the rest
    # the read-only viewer key reads it; the unscoped gateway key does not (another key's request)
    got = httpx.get(teams.url + "/dashboard/api/recent", headers=bearer("key-view"), timeout=5)
    assert got.status_code == 200 and rid in got.text
    got = httpx.get(teams.url + "/dashboard/api/recent", headers=bearer("key-ops"), timeout=5)
    assert got.status_code == 200 and rid not in got.text
    # a viewer key reads the gateway-wide views and changes nothing
    for method, path in (("POST", "/v1/tierwise/cache/invalidate"),
                         ("POST", "/v1/tierwise/feedback"), ("GET", "/v1/tierwise/approvals")):
        got = httpx.request(method, teams.url + path, headers=bearer("key-view"), json={}, timeout=5)
        # (no admin key is set here: the approvals API is off, 404 for everyone)
        assert got.status_code in ((404,) if path.endswith("approvals") else (401, 403)), (path, got.status_code)
        assert "error" in got.json()
    assert httpx.get(teams.url + "/v1/tierwise/blackboard", headers=bearer("key-view"), timeout=5).status_code == 200
    got = httpx.get(teams.url + "/v1/tierwise/cache", headers=bearer("key-view"), timeout=5)
    assert got.status_code == 404 and "cache.enabled is false" in got.json()["error"]["message"]  # no cache here (404 since wire4: schemathesis calls a 400 a valid request rejected)


def test_cache_admin_answers_in_schema_when_its_redis_is_down(two_tier, monkeypatch):
    from tests.harness import free_port

    monkeypatch.setenv("OPS", "key-ops")
    monkeypatch.setenv("ADM", "key-adm")
    url = f"redis://tierwise:cache-redis-password@127.0.0.1:{free_port()}/0"  # nothing listens there
    g = two_tier(server={"default_route": "main", "api_keys_env": ["OPS"], "admin_keys_env": ["ADM"]},
                 cache={"enabled": True, "backend": "redis", "redis_url": url, "redis_timeout": 0.2})
    for method, path, body, key in (("GET", "/v1/tierwise/cache", None, "key-adm"),
                                    ("POST", "/v1/tierwise/cache/invalidate", {}, "key-ops"),
                                    ("POST", "/v1/tierwise/cache/invalidate", {}, "key-adm")):
        r = httpx.request(method, g.url + path, headers=bearer(key), json=body, timeout=10)
        assert r.status_code == 503, (path, r.status_code, r.text[:300])
        assert r.json()["error"]["type"] == "server_error"
        assert "cache-redis-password" not in r.text


def test_a_client_cannot_rate_another_clients_answer(two_tier, openai_up, monkeypatch):
    """Request ids are a per-process prefix and a counter: one client's id tells it its neighbours'.
    Feedback moves learned routing and can start judge calls, so only the key that asked may rate."""
    for env, value in (("TEAM_A", "key-team-a"), ("TEAM_B", "key-team-b")):
        monkeypatch.setenv(env, value)
    g = two_tier(routes=TEAMS, server={"default_route": "a", "api_keys_env": ["TEAM_A", "TEAM_B"]})
    openai_up.script(Reply(text="b's answer"), Reply(text="a's answer"))
    b = oai(g, api_key="key-team-b").chat.completions.with_raw_response.create(model="b", messages=MSG)
    a = oai(g, api_key="key-team-a").chat.completions.with_raw_response.create(model="a", messages=MSG)
    g.flush()
    rid_b, rid_a = b.headers["x-tierwise-request-id"], a.headers["x-tierwise-request-id"]
    assert rid_a[:-12] == rid_b[:-12]  # guessable: the same prefix
    r = httpx.post(g.url + "/v1/tierwise/feedback", headers=bearer("key-team-a"),
                   json={"request_id": rid_b, "rating": "poor", "reason": "sabotage"})
    assert r.status_code == 404, r.text
    assert r.json()["error"]["type"] == "invalid_request_error" and "b's" not in r.text
    assert "feedback" not in (g.gateway.ledger.get(rid_b).extra or {})
    # the owner rates its own answer
    r = httpx.post(g.url + "/v1/tierwise/feedback", headers=bearer("key-team-a"),
                   json={"request_id": rid_a, "rating": "good"})
    assert r.status_code == 200, r.text


def test_the_blackboard_is_for_admin_and_viewer_keys(two_tier, openai_up, monkeypatch):
    """Every client's requests move the blackboard's figures (each model's traffic, latency and errors,
    which tier a `dynamic` route sends to): gateway-wide, like /metrics. A gateway key, limited to some
    routes or not, gets 403; an admin or viewer key reads all of it."""
    from tests.blackboard.test_dynamic_http import dynamic_route

    for env, value in (("TEAM_A", "key-team-a"), ("OPS", "key-ops"), ("ADM", "key-adm"), ("VIEW", "key-view")):
        monkeypatch.setenv(env, value)
    g = two_tier(routes={**dynamic_route(), "a": TEAMS["a"]},
                 server={"api_keys_env": [{"env": "TEAM_A", "routes": ["a"]}, "OPS"], "admin_keys_env": ["ADM"]},
                 observability={"dashboard": {"viewer_keys_env": ["VIEW"]}})
    openai_up.script(Reply(text="a's answer"))
    oai(g, api_key="key-ops").chat.completions.create(model="auto", messages=MSG)
    for key in ("key-team-a", "key-ops"):
        got = httpx.get(g.url + "/v1/tierwise/blackboard", headers=bearer(key), timeout=5)
        assert got.status_code == 403, (key, got.status_code, got.text[:300])
        assert got.json()["error"]["type"] == "invalid_request_error" and "local" not in got.text
        assert "admin" in got.json()["error"]["message"]
    assert httpx.get(g.url + "/v1/tierwise/blackboard", timeout=5).status_code == 401
    for key in ("key-adm", "key-view"):  # the operator's view
        full = httpx.get(g.url + "/v1/tierwise/blackboard", headers=bearer(key), timeout=5).json()
        assert "auto" in full["routes"] and "local" in full["models"], key


def test_repeated_negative_feedback_judges_an_answer_once(gateway, openai_up, anthropic_up):
    """Each judging is a frontier call nobody's budget pays for: a client that posts "poor" on its own
    answer again and again must not turn the feedback endpoint into free frontier calls."""
    from tests.learning.test_reflective_route import SUMMARY, judge_or_answer, reflective_config, wait_for

    g = gateway(reflective_config(openai_up, anthropic_up))
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    route = g.gateway.resolve("main")
    client = oai(g)
    rid = None
    for i in range(25):
        r = client.chat.completions.with_raw_response.create(
            model="main", messages=[{"role": "user", "content": f"{SUMMARY} ({i})"}])
        assert wait_for(lambda: not route._background, timeout=30)
        if r.parse().choices[0].message.content == "local summary":
            rid = r.headers["x-tierwise-request-id"]
            break
    assert rid is not None
    g.flush()
    before = len(g.ledger.query(kind="eval"))
    judging = []
    for _ in range(4):
        resp = httpx.post(g.url + "/v1/tierwise/feedback", json={"request_id": rid, "rating": "poor"},
                          headers=bearer("test"))
        assert resp.status_code == 200, resp.text
        judging.append(resp.json()["judging"])
        assert wait_for(lambda: not route._background, timeout=30)
    assert judging == [True, False, False, False]
    g.flush()
    assert len(g.ledger.query(kind="eval")) == before + 1


def test_a_failing_ledger_is_an_error_in_schema_not_a_bare_500(two_tier, openai_up, tmp_path):
    """Every handler's unexpected failure (here: the ledger's file is no database any more) leaves as
    an error in the schema of the API, never as uvicorn's bare text 500."""
    g = two_tier(observability={"dashboard": {"enabled": True}})
    openai_up.default = Reply(text="x")
    r = oai(g).chat.completions.with_raw_response.create(model="local", messages=MSG)
    rid = r.headers["x-tierwise-request-id"]
    g.flush()
    for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):
        (tmp_path / name).write_bytes(b"not a database" * 100)
    for method, path, body in (("POST", "/v1/tierwise/feedback", {"request_id": rid, "rating": "good"}),
                               ("GET", "/dashboard/api/trace?id=req_unknown", None)):
        got = httpx.request(method, g.url + path, json=body, timeout=10)
        assert got.status_code == 500, (path, got.status_code, got.text[:200])
        assert got.headers["content-type"] == "application/json", (path, got.text[:200])
        err = got.json()["error"]
        assert err["type"] == "server_error" and "see its log" in err["message"]
        assert "DatabaseError" not in got.text and "Traceback" not in got.text


def test_an_upstreams_token_counts_cannot_refill_a_budget(two_tier, anthropic_up):
    """Upstreams (and workers, whose results are OpenAI bodies) are not trusted with their sizes: a
    negative usage would be a negative cost that gives a spent budget its money back, and a count
    past 64 bits made the answer itself fail."""
    g = two_tier(budgets={"limits": [{"name": "cap", "usd": 1.0}]})
    huge = {"id": "msg_1", "type": "message", "role": "assistant", "model": "big-model", "stop_reason": "end_turn",
            "content": [{"type": "text", "text": "huge"}], "usage": {"input_tokens": 1e30, "output_tokens": 1}}
    anthropic_up.script(Reply(text="refund", usage=(-10_000_000, -5)), Raw(body=json.dumps(huge)))
    for text in ("refund", "huge"):
        r = oai(g).chat.completions.create(model="main", messages=MSG)
        assert r.choices[0].message.content == text
        assert r.usage is not None and 0 <= r.usage.prompt_tokens < 2**63
    g.flush()
    rows = g.ledger.query()
    assert len(rows) == 2 and all(row.input_tokens >= 0 and (row.cost_usd or 0) >= 0 for row in rows)
    status = httpx.get(g.url + "/v1/tierwise/budgets").json()
    assert status["budgets"] and all(b["usd_used"] > 0 for b in status["budgets"]), status  # the huge one counts


def test_a_flood_of_cache_stats_runs_one_backend_scan_at_a_time(two_tier, redis_prefix):
    """`GET /v1/tierwise/cache` on the Redis backend counts entries with a SCAN of the whole keyspace:
    any key holder asking again and again must not turn each request into a full scan of the shared Redis."""
    import concurrent.futures

    from tests.budgets.conftest import REDIS_URL

    g = two_tier(cache={"enabled": True, "backend": "redis", "redis_url": REDIS_URL, "redis_prefix": redis_prefix})
    backend = g.gateway.cache.backend
    running, most = [0], [0]
    real = backend.stats

    async def counted() -> Any:
        import asyncio

        running[0] += 1
        most[0] = max(most[0], running[0])
        try:
            await asyncio.sleep(0.05)  # a scan takes a while: the other requests arrive during it
            return await real()
        finally:
            running[0] -= 1

    backend.stats = counted
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: httpx.get(g.url + "/v1/tierwise/cache", timeout=10), range(40)))
    assert all(a.status_code == 200 and a.json()["backend"] == "redis" for a in answers)
    assert most[0] == 1  # never two scans at once, however many ask


def test_an_unknown_dashboard_path_is_a_plain_404_when_the_dashboard_is_on(teams):
    # Was: "/dashboard is off: set observability.dashboard.enabled: true", with the dashboard on.
    for path in ("/dashboard/static/..%2f..%2fpyproject.toml", "/dashboard/static/nope.js", "/metrics/x"):
        got = httpx.get(teams.url + path, headers=bearer("key-ops"), timeout=5)
        assert got.status_code == 404, (path, got.text)
        assert "no such endpoint" in got.json()["error"]["message"]
        assert "is off" not in got.text and "[tool" not in got.text


def test_the_off_hint_still_names_the_key_when_the_dashboard_is_off(two_tier):
    gw = two_tier()
    got = httpx.get(gw.url + "/dashboard", timeout=5)
    assert got.status_code == 404 and "observability.dashboard.enabled: true" in got.json()["error"]["message"]
    got = httpx.get(gw.url + "/metrics", timeout=5)
    assert got.status_code == 404 and "observability.metrics.enabled: true" in got.json()["error"]["message"]
