"""A per-model budget (`per: model`) reserves a web search's fee like every other budget. On one node (the in-process
store's `take`) it reserved the model's tokens alone (the fee was added on the records' path only): two requests in
flight allowing 60 searches each were both admitted under `admit: fits` $1 ($1.21 billed) before review31c."""

from __future__ import annotations

from tests.budgets.frontier_spend import frontier_config, second_of_two
from tests.doubles import Delay, Reply
from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)


def test_a_per_model_budget_reserves_the_search_fee(gateway, openai_up, anthropic_up, monkeypatch):  # noqa: F811
    monkeypatch.setattr("tierwise.budgets.controller.SEARCH_RESULT_TOKENS", 0)  # (the fee alone, as its sibling test)
    cfg = frontier_config(openai_up, anthropic_up, admit="fits")
    cfg["budgets"]["limits"][0].update(per="model", match=["frontier"])
    cfg["server"]["forwarding"] = {"server_tools": ["web_search_*"]}
    g = gateway(cfg)
    anthropic_up.default = Delay(3, Reply(text="found it", usage=(1000, 100), web_searches=60))
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 60}]
    second = second_of_two(g, anthropic_up, [{"role": "user", "content": "q"}], max_tokens=100, tools=tools)
    assert second == "429", "both admitted: $1.21 billed of a $1 budget"
