"""`GET /v1/tierwise/budgets` read with another team's key (authz36).

A gateway key limited to its team's routes read every `per: global` and `per: model` bucket and every rate
limit's settings: the spend of a "global" budget that covers only another team's route, the per-model bucket of
a model only another team's route reaches (a deployment name /health hides from that key), and the rate limits
naming the other team's route and key. Route names are not for other teams (a name a key may not use is a 404
like an unknown one: tests/gateway/test_model_list.py). A key now reads the buckets and limits that apply to
its own requests. Real gateway on loopback, the official openai SDK for the spend.
"""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import oai

ROUTES = {
    "a": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0},
    "b": {"policy": "fallback", "targets": ["premium"], "retries": 0},
    "main": {"policy": "fallback", "targets": ["local"], "retries": 0},
}
BUDGETS = {"limits": [
    {"name": "all-month", "usd": 500},  # covers every route: both teams' total
    {"name": "b-launch", "usd": 100, "routes": ["b"]},  # "global", but only team b's route
    {"name": "premium-cap", "per": "model", "match": ["prem*"], "usd": 50},  # only b's route reaches it
    {"name": "per-team", "per": "key", "usd": 20},
    {"name": "by-route", "per": "route", "usd": 30},
]}
RATES = {"limits": [
    {"name": "b-rpm", "per": "route", "routes": ["b"], "requests_per_minute": 30},
    {"name": "tb-rpm", "per": "key", "match": ["TEAM_B"], "requests_per_minute": 10},
    {"name": "everyone", "per": "key", "requests_per_minute": 1000},
]}


def status(g: Any, key: str) -> dict[str, Any]:
    got = httpx.get(g.url + "/v1/tierwise/budgets", headers={"authorization": f"Bearer {key}"}, timeout=5)
    assert got.status_code == 200, got.text[:300]
    return got.json()  # type: ignore[no-any-return]


@pytest.fixture
def teams(two_tier, monkeypatch) -> Any:
    for env, value in (("TEAM_A", "key-team-a"), ("TEAM_B", "key-team-b"), ("ADM", "key-adm")):
        monkeypatch.setenv(env, value)
    keys = [{"env": "TEAM_A", "routes": ["a"]}, {"env": "TEAM_B", "routes": ["b"]}]
    models = {"local": {"provider": "localsrv", "model": "qwen-local", "context_window": 8192},
              "frontier": {"provider": "cloud", "model": "big-model", "price": {"input": 3.0, "output": 15.0}},
              "premium": {"provider": "cloud", "model": "bigger-model", "price": {"input": 15.0, "output": 75.0}}}
    return two_tier(routes=ROUTES, models=models, budgets=BUDGETS, rate_limits=RATES,
                    server={"default_route": "main", "api_keys_env": keys, "admin_keys_env": ["ADM"]})


def test_a_team_key_reads_only_the_budgets_and_limits_of_its_own_requests(teams, anthropic_up, openai_up):
    anthropic_up.default = Reply(text="b's launch plan")
    oai(teams, api_key="key-team-b").chat.completions.create(model="b", max_tokens=50,
                                                             messages=[{"role": "user", "content": "launch"}])
    openai_up.default = Reply(text="a's answer")
    oai(teams, api_key="key-team-a").chat.completions.create(model="a", max_tokens=50,
                                                             messages=[{"role": "user", "content": "hello"}])
    mine = status(teams, "key-team-a")
    text = repr(mine)
    for other in ("b-launch", "premium-cap", "b-rpm", "tb-rpm", "TEAM_B", "'b'"):
        assert other not in text, (other, mine)
    # what applies to team a's requests is still there: the all-routes total, its own key bucket, every key's limit
    seen = {(r["budget"], r["value"]) for r in mine["budgets"]}
    assert {("all-month", "*"), ("per-team", "TEAM_A"), ("by-route", "a")} <= seen, mine
    assert {r["name"] for r in mine["rate_limits"]} == {"everyone"}, mine
    # team b reads its own route's budget and the model its route reaches, with what it spent
    theirs = status(teams, "key-team-b")
    spent = {(r["budget"], r["value"]): r for r in theirs["budgets"]}
    assert spent[("b-launch", "*")]["usd_used"] > 0 and spent[("premium-cap", "premium")]["usd_used"] > 0
    assert {r["name"] for r in theirs["rate_limits"]} == {"b-rpm", "tb-rpm", "everyone"}
    assert ("per-team", "TEAM_A") not in spent
    # an admin key reads every bucket and limit
    admin = status(teams, "key-adm")
    assert {("b-launch", "*"), ("premium-cap", "premium")} <= {(r["budget"], r["value"]) for r in admin["budgets"]}
    assert len(admin["rate_limits"]) == 3
