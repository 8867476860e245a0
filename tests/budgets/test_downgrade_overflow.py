"""A spent budget downgrades a route to its local model, and that model's window cannot hold the request.

newuser37: Codex (a ~9,500-token prompt) on a route whose `daily` budget was spent went down to a local model of
4,096 tokens; the client was told only "This model's maximum context length is 4096 tokens", which Codex shows as
"Codex ran out of room in the model's context window. Start a new thread": nothing named the budget, and a new
thread cannot help. The downgrade cannot answer, so the request is refused as the spent budget would refuse it,
naming the budget, when it resets, and why the local model could not take it."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai
from tierwise.budgets.report import budget_events

USAGE = (40, 400)
COST = USAGE[0] * 3 / 1e6 + USAGE[1] * 15 / 1e6
LONG = "word " * 12000  # far more than the local model's 8,192 tokens


def test_a_downgrade_the_local_model_cannot_hold_is_refused_naming_the_budget(two_tier, anthropic_up, openai_up):
    anthropic_up.default = Reply(text="paid answer", usage=USAGE)
    openai_up.default = Reply(text="local answer")
    g = two_tier(budgets={"on_exhausted": "downgrade", "limits": [{"name": "daily", "usd": COST * 0.5}]})
    client = oai(g)
    assert client.chat.completions.create(model="main", max_tokens=500, messages=[
        {"role": "user", "content": "hello"}]).choices[0].message.content == "paid answer"  # spends it
    assert client.chat.completions.create(model="main", max_tokens=500, messages=[
        {"role": "user", "content": "hello"}]).choices[0].message.content == "local answer"  # downgraded
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="main", max_tokens=500, messages=[{"role": "user", "content": LONG}])
    msg = e.value.body["message"]
    assert "budget 'daily'" in msg and "resets at" in msg, msg
    assert "'local'" in msg and "8,192" in msg, msg  # which local model, and its window
    with pytest.raises(openai.RateLimitError) as e:  # a stream is refused the same way, before its first byte
        client.chat.completions.create(model="main", max_tokens=500, stream=True,
                                       messages=[{"role": "user", "content": LONG}])
    assert "budget 'daily'" in e.value.body["message"]
    with pytest.raises(anthropic.RateLimitError) as e2:  # and in Anthropic's schema
        ant(g).messages.create(model="main", max_tokens=500, messages=[{"role": "user", "content": LONG}])
    assert "budget 'daily'" in str(e2.value)
    assert len(openai_up.requests) == 1  # the overflowing requests never reached the local server
    g.flush()  # `tierwise report`'s budget line counts them as refused, not as downgraded
    assert budget_events(g.ledger)["daily"] == {"refused": 3, "downgraded": 1}
