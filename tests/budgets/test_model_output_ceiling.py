"""A model's own output ceiling (`models.<m>.max_output_tokens`, session 35): before it, the only bound on what one
request reserved was `budgets.max_output_tokens` (131,072 by default), one number for every model. A model that
writes at most 8,192 tokens an answer, asked for 100,000, reserved 100,000 tokens of output ($1.50 of a $1 budget at
$15 per million), and every other client was refused while it ran, for an answer that could never cost more than
$0.12. Now a call's max_tokens is lowered to its model's ceiling before it is sent (the upstream would refuse it or
stop there) and the budget reserves no more than the largest ceiling of the route's remote models."""

from __future__ import annotations

import anthropic
import pytest

from tests.budgets.frontier_spend import frontier_config, held_request, second_answered_beside_held
from tests.doubles import Reply
from tests.gateway.conftest import ant, anthropic_up, gateway, oai, openai_up  # noqa: F401 (the same fixtures)

MSG = [{"role": "user", "content": "q"}]


def _config(openai_up, anthropic_up, ceiling: int | None = 8192) -> dict:  # noqa: F811
    cfg = frontier_config(openai_up, anthropic_up)  # $1 a day; $3 / $15 per million
    if ceiling is not None:
        cfg["models"]["frontier"]["max_output_tokens"] = ceiling
    return cfg


def test_a_request_past_its_models_ceiling_does_not_hold_the_budget(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(_config(openai_up, anthropic_up))
    second_answered_beside_held(g, anthropic_up, sent_max_tokens=8192)  # (sent at the model's ceiling)


def test_the_call_is_sent_at_the_models_ceiling_from_either_api(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(_config(openai_up, anthropic_up))
    anthropic_up.default = Reply(text="hi", usage=(10, 5))
    r = oai(g).chat.completions.create(model="main", max_completion_tokens=50_000, messages=MSG)
    assert r.choices[0].message.content == "hi"
    assert anthropic_up.requests[-1].body["max_tokens"] == 8192
    ant(g).messages.create(model="main", max_tokens=4000, messages=MSG)  # under it: kept
    assert anthropic_up.requests[-1].body["max_tokens"] == 4000


def test_without_a_ceiling_the_reservation_is_the_clients_cap(gateway, openai_up, anthropic_up):  # noqa: F811
    """The guard: no `max_output_tokens`, the request's own cap is reserved (and the second one refused)."""
    g = gateway(_config(openai_up, anthropic_up, ceiling=None))
    with held_request(g, anthropic_up), pytest.raises(anthropic.RateLimitError):
        ant(g).messages.create(model="main", max_tokens=10, messages=MSG)
    assert anthropic_up.requests[0].body["max_tokens"] == 100_000


def test_a_ceiling_of_yes_is_a_config_error(tmp_path, openai_up, anthropic_up):  # noqa: F811
    from tests.harness import make_config
    from tierwise.errors import ConfigError

    with pytest.raises(ConfigError, match="max_output_tokens"):
        make_config(_config(openai_up, anthropic_up, ceiling=True), tmp_path)  # type: ignore[arg-type]


def test_a_thinking_budget_past_the_ceiling_skips_the_model(gateway, openai_up, anthropic_up):  # noqa: F811
    """review35c: lowered to the ceiling (8,192), a call kept its thinking budget (10,000) and went upstream as a
    request Anthropic refuses (`max_tokens` must be greater than `thinking.budget_tokens`): the model is skipped
    without a call instead (as for a context window), and the error names the budget and the ceiling."""
    g = gateway(_config(openai_up, anthropic_up))
    anthropic_up.default = Reply(text="hi", usage=(10, 5))
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).messages.create(model="main", max_tokens=20_000, thinking={"type": "enabled", "budget_tokens": 10_000},
                               messages=MSG)
    assert "thinking.budget_tokens 10,000" in str(e.value) and "8,192" in str(e.value), str(e.value)
    assert anthropic_up.requests == []  # (before: sent with max_tokens 8,192 and the 10,000 budget, answered 400)
    r = ant(g).messages.create(model="main", max_tokens=20_000, thinking={"type": "enabled", "budget_tokens": 4_000},
                               messages=MSG)  # a budget below the ceiling: lowered and sent
    assert r.content[-1].text == "hi"
    assert anthropic_up.requests[-1].body["max_tokens"] == 8192
