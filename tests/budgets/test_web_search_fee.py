"""Anthropic's web search server tool (allowed with `server.forwarding.server_tools`) bills $10 per 1,000 searches on
top of the tokens (`usage.server_tool_use.web_search_requests`). Before (session 30, costs2) the fee was counted
nowhere: answers of 20 searches each cost $0.2045 and were counted $0.0045: 10 answered of a $1 budget, $2.05 billed.
"""

from __future__ import annotations

import pytest

from tests.budgets.frontier_spend import (
    answered_until_refused,
    frontier_config,
    second_allowing_sixty_searches,
    second_of_two,
    used,
)
from tests.doubles import Reply
from tests.gateway.conftest import ant, anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)

SEARCHES = 20
BILLED = (1000 * 3 + 100 * 15) / 1e6 + SEARCHES * 10 / 1000  # $0.2045 an answer


@pytest.mark.parametrize("stream", [False, True])
def test_web_searches_are_counted_at_their_fee(gateway, openai_up, anthropic_up, stream):  # noqa: F811
    cfg = frontier_config(openai_up, anthropic_up)
    cfg["server"]["forwarding"] = {"server_tools": ["web_search_*"]}
    g = gateway(cfg)
    anthropic_up.default = Reply(text="found it", usage=(1000, 100), web_searches=SEARCHES)
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": SEARCHES}]
    answered = answered_until_refused(g, lambda i: {"model": "main", "max_tokens": 100, "tools": tools,
                                                    "messages": [{"role": "user", "content": f"q {i}"}]}, stream)
    counted = used(g)
    assert answered == 5, f"{answered} answered: ${answered * BILLED:.4f} billed, ${counted:.4f} counted of $1"
    assert counted == pytest.approx(answered * BILLED)


def test_a_request_allowing_searches_reserves_their_fee():
    from types import SimpleNamespace

    from tierwise.pricing import searches_allowed

    def req(tools):
        return SimpleNamespace(source_body={"tools": tools})

    assert searches_allowed(req([{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}])) == 3
    assert searches_allowed(req([{"type": "custom", "name": "f"}])) == 0
    assert searches_allowed(req([{"type": "web_search_20250305", "name": "web_search"}])) == 10  # no max_uses
    assert searches_allowed(req([{"type": "web_search_20250305", "max_uses": "x"}])) == 10
    assert searches_allowed(SimpleNamespace(source_body=None, tools=[])) == 0


def test_two_requests_allowing_sixty_searches_do_not_both_fit_a_dollar(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                       monkeypatch):
    """`max_uses: 60` is $0.60 of searches: reserved, the second request in flight is refused (before: both admitted,
    each reserving $0.0045 of tokens, $1.21 billed of `admit: fits` $1). The fee alone: the searches' results
    reserved as input (below) are set to none here, or 60 searches' results alone would not fit the dollar."""
    second = second_allowing_sixty_searches(gateway, openai_up, anthropic_up, monkeypatch,
                                            [{"role": "user", "content": "q"}])
    assert second == "429", "both admitted: $1.21 billed of a $1 budget"


def test_search_results_are_reserved_as_input(gateway, openai_up, anthropic_up):  # noqa: F811
    """Each search's results come back into the model's context and are billed as input tokens (the upstream's
    `input_tokens` holds them); only the fee was reserved before session 31 (costs3): two requests in flight allowing
    5 searches each reserved $0.05 apiece of an `admit: fits` $0.30 budget, both were admitted and billed $0.2015 each
    (50,000 input tokens of results): $0.403, 1.34x. Now a search reserves SEARCH_RESULT_TOKENS of input."""
    from tests.doubles import Delay
    from tierwise.pricing import SEARCH_RESULT_TOKENS

    cfg = frontier_config(openai_up, anthropic_up, admit="fits")
    cfg["budgets"]["limits"][0]["usd"] = 0.30
    cfg["server"]["forwarding"] = {"server_tools": ["web_search_*"]}
    g = gateway(cfg)
    anthropic_up.default = Delay(3, Reply(text="found it", usage=(5 * SEARCH_RESULT_TOKENS, 100), web_searches=5))
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    second = second_of_two(g, anthropic_up, [{"role": "user", "content": "q"}], max_tokens=100, tools=tools)
    assert second == "429", "both admitted: $0.403 billed of a $0.30 budget"
