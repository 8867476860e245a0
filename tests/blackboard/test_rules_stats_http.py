"""`rules` matchers on blackboard statistics through the real server: "local p50 above 300 ms ->
frontier", read from the local model's live statistics; the Anthropic SDK as the client."""

from __future__ import annotations

import pytest

from tests.blackboard.test_dynamic_http import FAST, SLOW
from tests.doubles import Reply
from tests.gateway.conftest import ant
from tests.harness import make_config, two_tier_config
from tierwise.errors import ConfigError

ROUTES = {
    "main": {
        "policy": "rules",
        "rules": [{"name": "local slow", "match": {"stats": {"model": "local", "latency_p50_ms_above": 300}},
                   "target": "frontier"}],
        "default": "local",
    },
}


def ask(g) -> str:
    r = ant(g).messages.create(model="main", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    return r.content[0].text


def test_rule_on_local_p50(gateway, openai_up, anthropic_up):
    openai_up.default, anthropic_up.default = FAST, Reply(text="frontier answer")
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes=ROUTES, blackboard={"window": 3})
    g = gateway(cfg)
    assert [ask(g) for _ in range(3)] == ["local answer"] * 3
    openai_up.default = SLOW
    # median of the last 3 calls: above 300 ms once 2 of them are slow
    assert [ask(g) for _ in range(4)] == ["slow local", "slow local", "frontier answer", "frontier answer"]
    g.flush()
    reason = g.ledger.query(route="main")[-1].reason
    assert reason.startswith("local slow: local latency_p50_ms") and "> 300" in reason, reason


def test_stats_matcher_needs_a_model(tmp_path, openai_up, anthropic_up):
    bad = {"main": {"policy": "rules", "default": "local",
                    "rules": [{"match": {"stats": {"latency_p50_ms_above": 300}}, "target": "frontier"}]}}
    with pytest.raises(ConfigError, match="model"):
        make_config(two_tier_config(openai_up.url, anthropic_up.url, routes=bad), tmp_path)
    empty = {"main": {"policy": "rules", "default": "local",
                      "rules": [{"match": {"stats": {"model": "local"}}, "target": "frontier"}]}}
    with pytest.raises(ConfigError, match="latency_p50_ms_above"):
        make_config(two_tier_config(openai_up.url, anthropic_up.url, routes=empty), tmp_path)
