"""The cache next to budgets: a cached answer still serves a request whose budget is spent ($0), and
a budget-downgraded answer (from the local tier) is never stored under the route's key, so it
cannot be served later to requests the frontier model should answer."""

from __future__ import annotations

import asyncio

from tests.doubles import Reply
from tests.gateway.conftest import oai

USAGE = (40, 400)
COST = USAGE[0] * 3 / 1e6 + USAGE[1] * 15 / 1e6


def test_downgraded_answer_is_not_cached(two_tier, anthropic_up, openai_up):
    anthropic_up.default = Reply(text="frontier answer", usage=USAGE)
    openai_up.default = Reply(text="local answer", usage=(10, 10))
    g = two_tier(budgets={"limits": [{"name": "cap", "usd": COST * 0.5}], "routes": {"main": {"on_exhausted":
                                                                                               "downgrade"}}},
                 cache={"enabled": True, "routes": {"main": {"sampled": True}}})

    def ask(text: str):
        r = oai(g).chat.completions.with_raw_response.create(model="main", max_tokens=500,
                                                             messages=[{"role": "user", "content": text}])
        return r.parse().choices[0].message.content, r.headers.get("x-tierwise-cache")

    assert ask("first") == ("frontier answer", "miss")
    assert ask("first") == ("frontier answer", "hit")
    assert ask("first") == ("frontier answer", "hit")  # spent budget, but a hit costs nothing
    assert ask("second") == ("local answer", "miss")  # the budget is spent: downgraded
    assert ask("second") == ("local answer", "miss")  # ... and not stored
    stats = asyncio.run_coroutine_threadsafe(g.gateway.cache.stats(), g.loop).result(5)
    assert stats["stored"] == 1 and stats["entries"] == 1  # only the frontier answer


def test_spent_budget_that_refuses_still_serves_cached_answers(two_tier, anthropic_up):
    """The cache sits before the refusal: a hit is served ($0) with the budget spent, in both client
    formats and as a stream; a miss gets the budget error in the client's schema."""
    import anthropic
    import openai
    import pytest

    from tests.gateway.conftest import ant

    anthropic_up.default = Reply(text="frontier answer", usage=USAGE)
    g = two_tier(budgets={"limits": [{"name": "cap", "usd": COST * 1.5}], "on_exhausted": "refuse"},
                 cache={"enabled": True, "routes": {"main": {"sampled": True}}})
    msgs = [{"role": "user", "content": "first"}]

    def ask(text: str, **kw):
        r = oai(g).chat.completions.with_raw_response.create(model="main", max_tokens=500,
                                                             messages=[{"role": "user", "content": text}], **kw)
        return r.parse(), r.headers.get("x-tierwise-cache")

    assert ask("first")[0].choices[0].message.content == "frontier answer"
    with ant(g).messages.stream(model="main", max_tokens=500, messages=msgs) as s:
        assert s.get_final_text() == "frontier answer"  # cached as a stream; the budget is now spent
    calls = len(anthropic_up.requests)
    resp, how = ask("first")
    assert (resp.choices[0].message.content, how) == ("frontier answer", "hit")
    with ant(g).messages.stream(model="main", max_tokens=500, messages=msgs) as s:
        assert (s.get_final_text(), s.response.headers.get("x-tierwise-cache")) == ("frontier answer", "hit")
    assert len(anthropic_up.requests) == calls  # served from the cache, nothing reached the upstream
    with pytest.raises(openai.RateLimitError) as e:
        ask("second")
    assert "budget 'cap'" in e.value.message and e.value.response.headers.get("retry-after")
    with pytest.raises(anthropic.RateLimitError) as ea:
        ant(g).messages.create(model="main", max_tokens=500, messages=[{"role": "user", "content": "second"}])
    assert "budget 'cap'" in ea.value.message
    assert len(anthropic_up.requests) == calls
