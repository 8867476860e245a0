"""Hidden reasoning is output the upstream bills. OpenAI counts it in `completion_tokens` (and says how much in
`completion_tokens_details.reasoning_tokens`); Gemini's OpenAI-compatible layer, and proxies in front of it, left
it out of `completion_tokens` and put it in `total_tokens` only (router-for-me/CLIProxyAPI#5733: completion 0,
reasoning 60, total 81). Before session 36 (costs8) the gateway read `completion_tokens` alone: a $0.05 budget
counted such an answer's 10 visible tokens ($0.00045) and answered 10 of 10 calls that each cost $0.03045. Real gateway,
the openai SDK, the OpenAI double as the frontier, memory store."""

from __future__ import annotations

import pytest

from tests.budgets.frontier_spend import answered_of, used
from tests.doubles import Reply
from tests.gateway.conftest import gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import two_tier_config


def _config(openai_up, usd: float) -> dict:  # noqa: F811
    cfg = two_tier_config(openai_up.url, openai_up.url, remote_kind="openai",
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["models"]["frontier"]["price"] = {"input": 3, "output": 15}
    cfg["budgets"] = {"limits": [{"name": "cap", "usd": usd}]}
    return cfg


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_left_out_of_completion_tokens_is_still_billed(gateway, openai_up, stream):  # noqa: F811
    # 100 in, 10 visible out, 2,000 reasoning reported apart: $0.0003 + $0.03015 = $0.03045 a call
    openai_up.default = Reply(text="ok", usage=(100, 10), reasoning_tokens=2000, reasoning_outside_completion=True)
    g = gateway(_config(openai_up, usd=0.05))
    answered = answered_of(g, 10, max_tokens=4000, stream=stream, messages=[{"role": "user", "content": "think"}])
    # the first counts $0.03045, the second is admitted on the $0.01955 left, then the cap is spent
    assert answered == 2, f"{answered} of 10 answered under a $0.05 budget (each cost $0.03045)"


def test_an_openai_count_with_reasoning_inside_is_not_counted_twice(gateway, openai_up):  # noqa: F811
    openai_up.default = Reply(text="ok", usage=(100, 10), reasoning_tokens=2000)  # completion_tokens 2,010
    g = gateway(_config(openai_up, usd=1.0))
    r = oai(g).chat.completions.create(model="main", max_tokens=4000, messages=[{"role": "user", "content": "think"}])
    assert r.usage.completion_tokens == 2010
    assert used(g) == pytest.approx((100 * 3 + 2010 * 15) / 1e6)


def test_reasoning_left_out_is_counted_once(gateway, openai_up):  # noqa: F811
    openai_up.default = Reply(text="ok", usage=(100, 10), reasoning_tokens=2000, reasoning_outside_completion=True)
    g = gateway(_config(openai_up, usd=1.0))
    oai(g).chat.completions.create(model="main", max_tokens=4000, messages=[{"role": "user", "content": "think"}])
    assert used(g) == pytest.approx((100 * 3 + 2010 * 15) / 1e6)
