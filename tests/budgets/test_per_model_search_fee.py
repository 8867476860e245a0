"""A per-model budget (`per: model`) reserves a web search's fee like every other budget. On one node (the in-process
store's `take`) it reserved the model's tokens alone (the fee was added on the records' path only): two requests in
flight allowing 60 searches each were both admitted under `admit: fits` $1 ($1.21 billed) before review31c."""

from __future__ import annotations

from tests.budgets.frontier_spend import second_allowing_sixty_searches
from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)


def test_a_per_model_budget_reserves_the_search_fee(gateway, openai_up, anthropic_up, monkeypatch):  # noqa: F811
    second = second_allowing_sixty_searches(gateway, openai_up, anthropic_up, monkeypatch,
                                            [{"role": "user", "content": "q"}], per="model", match=["frontier"])
    assert second == "429", "both admitted: $1.21 billed of a $1 budget"
