"""Under `admit: fits`, a request whose own worst case is more than the whole budget can never be admitted. It was
told the budget was spent ("$0.0000 of $0.25 per day … resets at midnight", a 429 with a Retry-After of hours), every
day. Since costs3 each web search allowed reserves 10,000 input tokens of its results: a request allowing the default
10 searches reserves $0.40 with Sonnet, so a $0.25 budget refused every such request that way, however fresh."""

from __future__ import annotations

import anthropic
import pytest

from tests.budgets.frontier_spend import frontier_config
from tests.doubles import Reply
from tests.gateway.conftest import ant, anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)


def test_a_request_past_the_whole_budget_is_told_so(gateway, openai_up, anthropic_up):  # noqa: F811
    cfg = frontier_config(openai_up, anthropic_up, admit="fits")
    cfg["budgets"]["limits"][0]["usd"] = 0.25
    cfg["server"]["forwarding"] = {"server_tools": ["web_search_*"]}
    g = gateway(cfg)
    anthropic_up.default = Reply(text="found", usage=(2000, 100), web_searches=1)
    tools = [{"type": "web_search_20250305", "name": "web_search"}]
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).messages.create(model="main", max_tokens=100, tools=tools, messages=[{"role": "user", "content": "q"}])
    msg = e.value.body["error"]["message"]
    assert "never be admitted" in msg and "max_uses" in msg and "spent" not in msg, msg
    assert not anthropic_up.requests
    # with fewer searches allowed it fits, and is answered
    tools[0]["max_uses"] = 2
    r = ant(g).messages.create(model="main", max_tokens=100, tools=tools, messages=[{"role": "user", "content": "q"}])
    assert r.content[0].text == "found"
