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
