"""One request could hold a whole budget (session 34's probe of costs6): a remote model without `context_window` bounded
nothing, so `max_tokens: 2147483647` reserved $32,212 of a $10 budget and every other client got a 429 "spent ...
resets at <midnight>" while it ran. Now a request asking for more answer than `budgets.max_output_tokens` is refused
with a 400 naming the field and the setting (as OpenAI and Anthropic refuse a cap past the model's), and a 429 that
reservations in flight alone cause says so, with a Retry-After of seconds, not hours (memory and Redis stores)."""

from __future__ import annotations

import uuid

import anthropic
import openai
import pytest

from tests.budgets.frontier_spend import frontier_config, held_request
from tests.doubles import Reply
from tests.gateway.conftest import ant, anthropic_up, gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import drop_redis_keys

REDIS_URL = "redis://127.0.0.1:6379/13"  # (databases 0-6 are other work's)
MSG = [{"role": "user", "content": "q"}]


def test_a_cap_past_the_ceiling_is_a_400_naming_it(gateway, openai_up, anthropic_up):  # noqa: F811
    cfg = frontier_config(openai_up, anthropic_up)
    cfg["budgets"]["limits"][0]["usd"] = 10.0
    assert "context_window" not in cfg["models"]["frontier"]
    g = gateway(cfg)
    anthropic_up.default = Reply(text="hi", usage=(10, 5))
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).messages.create(model="main", max_tokens=2147483647, messages=MSG, timeout=60)
    msg = e.value.body["error"]["message"]
    assert "max_tokens 2147483647" in msg and "budgets.max_output_tokens" in msg, msg
    with pytest.raises(openai.BadRequestError) as e2:
        oai(g).chat.completions.create(model="main", max_completion_tokens=2147483647, messages=MSG)
    assert "max_completion_tokens 2147483647" in str(e2.value), e2.value
    assert not anthropic_up.requests
    # at the ceiling it is admitted ($1.97 of $10 reserved)
    r = ant(g).messages.create(model="main", max_tokens=131072, messages=MSG, timeout=60)
    assert r.content[0].text == "hi"


def _held_then_asked(g, up) -> anthropic.RateLimitError:
    """A request holding most of the $1 budget ($1.50 of worst case) while its upstream is held; a second one's 429."""
    with held_request(g, up) as out, pytest.raises(anthropic.RateLimitError) as e:
        ant(g).messages.create(model="main", max_tokens=10, messages=MSG)
    assert out and out[0].content[0].text == "long"
    return e.value


def _soon(err: anthropic.RateLimitError) -> None:
    msg = err.body["error"]["message"]
    assert "held by requests in flight" in msg and "retry when they end" in msg, msg
    assert float(err.response.headers["retry-after"]) <= 5, err.response.headers.get("retry-after")


def test_a_budget_held_by_a_request_in_flight_says_soon(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(frontier_config(openai_up, anthropic_up))
    _soon(_held_then_asked(g, anthropic_up))
    anthropic_up.default = Reply(text="now", usage=(10, 5))  # settled at cents: the budget is free again
    assert ant(g).messages.create(model="main", max_tokens=10, messages=MSG).content[0].text == "now"


def test_a_budget_held_in_redis_says_soon(gateway, openai_up, anthropic_up):  # noqa: F811
    prefix = f"tierwise-test:{uuid.uuid4().hex[:12]}:"
    cfg = frontier_config(openai_up, anthropic_up)
    cfg["budgets"]["store"] = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix, "timeout": 30}
    try:
        g = gateway(cfg)
        _soon(_held_then_asked(g, anthropic_up))
    finally:
        drop_redis_keys(REDIS_URL, prefix)


def test_a_spent_budget_still_says_when_it_resets(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(frontier_config(openai_up, anthropic_up))
    anthropic_up.default = Reply(text="dear", usage=(10, 70_000))  # $1.05: spent, nothing in flight
    ant(g).messages.create(model="main", max_tokens=100_000, messages=MSG, timeout=60)
    with pytest.raises(anthropic.RateLimitError) as e:
        ant(g).messages.create(model="main", max_tokens=10, messages=MSG)
    msg = e.value.body["error"]["message"]
    assert "is spent" in msg and "in flight (" not in msg, msg
    assert float(e.value.response.headers["retry-after"]) > 60
