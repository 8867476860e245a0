"""Anthropic's web fetch server tool has no fee, but every page it fetches comes into the model's context and is billed
as input tokens (the upstream's `input_tokens` holds them). Before session 32 (costs4) nothing of them was reserved:
requests in flight allowing fetches each reserved their body's few tokens, and an `admit: fits` budget admitted them
all. Now each fetch allowed reserves its tool's `max_content_tokens` (FETCH_RESULT_TOKENS when it names none) of input,
as a web search reserves its results since costs3."""

from __future__ import annotations

import pytest

from tests.budgets.frontier_spend import frontier_config, second_of_two
from tests.doubles import Delay, Reply
from tests.gateway.conftest import ant, anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)

PAGE = 20_000  # tokens of one fetched page
FETCH = {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 5, "max_content_tokens": PAGE}


def fetch_config(openai_up, anthropic_up, usd: float) -> dict:  # noqa: F811
    cfg = frontier_config(openai_up, anthropic_up, admit="fits")
    cfg["budgets"]["limits"][0]["usd"] = usd
    cfg["server"]["forwarding"] = {"server_tools": ["web_fetch_*"]}
    return cfg


def test_fetched_pages_are_reserved_as_input(gateway, openai_up, anthropic_up):  # noqa: F811
    """Two requests in flight each allowing 5 fetches of 20,000-token pages ($0.3015 billed apiece), `fits` $0.50."""
    g = gateway(fetch_config(openai_up, anthropic_up, 0.50))
    anthropic_up.default = Delay(3, Reply(text="read it", usage=(5 * PAGE, 100)))
    second = second_of_two(g, anthropic_up, [{"role": "user", "content": "read these"}], max_tokens=100, tools=[FETCH])
    assert anthropic_up.requests[0].body["tools"][0]["type"] == "web_fetch_20250910"  # (the tool reached it)
    assert second == "429", "both admitted: $0.603 billed of a $0.50 budget"


def test_a_fetch_tool_without_bounds_reserves_the_estimate(gateway, openai_up, anthropic_up):  # noqa: F811
    """No `max_uses` and no `max_content_tokens`: SEARCHES_UNSAID fetches of FETCH_RESULT_TOKENS each ($0.75 of
    input at $3 per million) never fit a $0.50 `fits` budget: a 400 that names the tool's bounds; with them, answered."""
    import anthropic

    g = gateway(fetch_config(openai_up, anthropic_up, 0.50))
    anthropic_up.default = Reply(text="read it", usage=(PAGE, 100))
    c = ant(g)
    msgs = [{"role": "user", "content": "read this"}]
    with pytest.raises(anthropic.BadRequestError) as e:
        c.messages.create(model="main", max_tokens=100, messages=msgs,
                          tools=[{"type": "web_fetch_20250910", "name": "web_fetch"}])
    assert "max_content_tokens" in e.value.body["error"]["message"]
    c.messages.create(model="main", max_tokens=100, messages=msgs, tools=[{**FETCH, "max_uses": 1}])


def test_a_cut_call_is_not_billed_the_unfetched_pages(gateway, openai_up, anthropic_up):  # noqa: F811
    """The pages are reserved, never billed: a call cut before its answer counts its body's input, not 100,000
    tokens of pages it may never have fetched."""
    from tests.budgets.frontier_spend import used

    g = gateway(fetch_config(openai_up, anthropic_up, 5.0))
    anthropic_up.default = Delay(30, Reply(text="read it", usage=(PAGE, 100)))
    c = ant(g, timeout=1.0)
    import anthropic

    with pytest.raises(anthropic.APITimeoutError):
        c.messages.create(model="main", max_tokens=100, messages=[{"role": "user", "content": "read"}],
                          tools=[FETCH])
    assert used(g) < 0.01
