"""The `budgets:` and `rate_limits:` sections: optional, validated, with errors naming the key."""

from __future__ import annotations

import pytest

from tierwise.config import parse_config
from tierwise.errors import ConfigError
from tierwise.gateway import Gateway

BASE = """
providers:
  l: {kind: openai, base_url: "http://127.0.0.1:1/v1", locality: local}
  r: {kind: anthropic, base_url: "http://127.0.0.1:1"}
models:
  local: {provider: l, model: m}
  frontier: {provider: r, model: m, price: {input: 3, output: 15}}
routes:
  main: {policy: fallback, targets: [frontier, local]}
  remote-only: {policy: fallback, targets: [frontier]}
"""


def test_absent_sections_leave_the_gateway_as_it_was():
    gw = Gateway(parse_config(BASE))
    assert gw.spend.active is False and gw.spend.store is None


@pytest.mark.parametrize("section, needle", [
    ("budgets: {limits: [{name: a}]}", "a budget needs `usd`, `tokens` or both"),
    ("budgets: {limits: [{name: a, usd: -1}]}", "budgets.limits[0].usd"),
    ("budgets: {limits: [{name: a, usd: 1, per: user}]}", "budgets.limits[0].per"),
    ("budgets: {limits: [{name: a, usd: 1, window: week}]}", "budgets.limits[0].window"),
    ("budgets: {limits: [{name: a, usd: 1, window: {rolling: 5x}}]}", "not a duration"),
    ("budgets: {limits: [{name: a, usd: 1}, {name: a, tokens: 5}]}", "budget names must be unique"),
    ("budgets: {limits: [{name: 'a:b', usd: 1}]}", "budgets.limits[0].name"),
    ("budgets: {limits: [{name: a, usd: 1, routes: [nope]}]}", "budgets.limits[0].routes: unknown route"),
    ("budgets: {routes: {nope: {on_exhausted: downgrade}}}", "budgets.routes.nope: unknown route"),
    ("budgets: {routes: {main: {downgrade_to: nope}}}", "budgets.routes.main.downgrade_to: unknown"),
    ("budgets: {store: {backend: postgres}}", "budgets.store.backend"),
    ("budgets: {store: {on_store_error: shrug}}", "budgets.store.on_store_error"),
    ("budgets: {limit: []}", "budgets.limit: unknown key"),
    ("rate_limits: {limits: [{name: a}]}", "requests_per_minute, tokens_per_minute or both"),
    ("rate_limits: {limits: [{name: a, requests_per_minute: 0}]}", "rate_limits.limits[0].requests_per_minute"),
    ("rate_limits: {limits: [{name: a, requests_per_minute: 5, routes: [x]}]}", "rate_limits.limits[0].routes"),
])
def test_bad_sections_name_the_key(section, needle):
    with pytest.raises(ConfigError) as e:
        parse_config(BASE + section, file="tierwise.yaml")
    assert needle in e.value.message


def test_downgrade_needs_a_local_model():
    cfg = parse_config(BASE + "budgets: {limits: [{name: a, usd: 1}], routes: {remote-only: {on_exhausted: downgrade}}}")
    with pytest.raises(ConfigError) as e:
        Gateway(cfg)
    assert "reaches no local model" in e.value.message and "downgrade_to" in e.value.message
    ok = parse_config(BASE + "budgets: {limits: [{name: a, usd: 1}], routes: {remote-only: "
                      "{on_exhausted: downgrade, downgrade_to: local}, main: {on_exhausted: downgrade}}}")
    gw = Gateway(ok)
    assert gw.spend.plan("main", "").downgrade_name == "local"
    assert gw.spend.plan("remote-only", "").downgrade is gw.deployments["local"]


def test_plans_price_the_dearest_remote_model_and_skip_local_only_routes():
    cfg = parse_config(BASE + """
  cheap: {policy: fallback, targets: [local]}
budgets:
  limits:
    - {name: all, usd: 5}
    - {name: per-model, per: model, usd: 1}
    - {name: main-only, usd: 1, routes: [main]}
    - {name: per-session, per: session, tokens: 1000}
""")
    gw = Gateway(cfg)
    p = gw.spend.plan("main", "")
    assert (p.in_price, p.out_price) == (3.0, 15.0)
    assert [c.budget.name for c in p.static] == ["all", "per-model", "main-only"]
    assert p.static[1].model == "frontier" and [b.name for b in p.dynamic] == ["per-session"]
    cheap = gw.spend.plan("cheap", "")
    assert not cheap.static and not cheap.dynamic and not cheap.remote
