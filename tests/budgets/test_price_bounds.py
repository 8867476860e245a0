"""A price in the config past any real one (`inf`, `1e308` USD per million tokens: a typo, a unit slip) is a config
error that names the key. Before session 34 (costs6) it was taken: every cost came out infinite (1e308 × 100 tokens
overflows before the division by a million), a settlement's inf − inf left the budget's count NaN, and a $1 budget
answered every request (4 of 4 in the probe, `usd_used: null`). Real gateway, the openai SDK, memory store."""

from __future__ import annotations

import openai
import pytest

from tests.budgets.frontier_spend import answered_of, frontier_config
from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import GatewayServer, make_config
from tierwise.errors import ConfigError


def _config(openai_up, anthropic_up, field: str, value: float) -> dict:  # noqa: F811
    cfg = frontier_config(openai_up, anthropic_up, usd=0.01)
    cfg["models"]["frontier"]["price"][field] = value
    return cfg


@pytest.mark.parametrize("field,value", [("input", float("inf")), ("input", 1e308), ("output", 1e300),
                                         ("request", float("inf")), ("cache_read", 1e7)])
def test_a_price_past_any_real_one_is_a_config_error(openai_up, anthropic_up, tmp_path, field, value):  # noqa: F811
    anthropic_up.default = Reply(text="answer " * 50, usage=(100, 400))
    cfg = _config(openai_up, anthropic_up, field, value)
    try:
        config = make_config(cfg, tmp_path)
    except ConfigError as e:
        assert f"models.frontier.price.{field}" in str(e) or field in str(e), str(e)
        return
    g = GatewayServer(config).start()  # (before: taken; what the budget then did)
    try:
        answered = answered_of(g, 4, openai.APIStatusError, max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    finally:
        g.stop()
    pytest.fail(f"price {field}: {value} was taken; {answered} of 4 answered under a $0.01 budget")


@pytest.mark.parametrize("field,value", [("input", 3e-6), ("output", 1.5e-5)])
def test_a_price_per_token_is_a_config_error(openai_up, anthropic_up, tmp_path, field, value):  # noqa: F811
    """OpenAI and Anthropic list prices per token and per million: `input: 0.000003` ($3 a million written per token)
    made every cost a millionth of itself, and the $0.01 budget answered every request (session 34, review34b)."""
    anthropic_up.default = Reply(text="answer " * 50, usage=(100, 400))
    cfg = _config(openai_up, anthropic_up, field, value)
    with pytest.raises(ConfigError) as e:
        make_config(cfg, tmp_path)
    assert "models.frontier.price" in str(e.value) and "per token, write" in str(e.value), str(e.value)


def test_a_free_or_cheap_model_is_still_taken(openai_up, anthropic_up, tmp_path):  # noqa: F811
    cfg = _config(openai_up, anthropic_up, "input", 0)
    cfg["models"]["frontier"]["price"]["output"] = 0.005  # (the cheapest real prices: about $0.005 a million)
    make_config(cfg, tmp_path)
