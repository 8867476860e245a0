"""An input count too small for what was sent (usage_bounds.too_little_input, session 37, costs9). Output counts below
what the answer's characters could make were doubted since session 34; input counts were believed whatever they said:
a host reporting 1 input token for a 40,000-character prompt was billed $0.000003 of input for a prompt of about
10,000 tokens ($0.03 at $3 per million), and a $0.05 budget answered every such request. Now an input count (read,
cached and written together) below the text sent at 32 characters a token is billed as tierwise estimates the input."""

from __future__ import annotations

import pytest

from tests.budgets.frontier_spend import answered_until_refused, frontier_config, used
from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)

PROMPT = "word " * 8000  # 40,000 characters: about 8,000-10,000 tokens on any tokenizer


def _ask(i: int) -> dict:
    return {"model": "main", "max_tokens": 10, "messages": [{"role": "user", "content": f"{i} {PROMPT}"}]}


@pytest.mark.parametrize("stream", [False, True])
def test_one_input_token_for_a_long_prompt_is_not_believed(gateway, openai_up, anthropic_up, stream):  # noqa: F811
    g = gateway(frontier_config(openai_up, anthropic_up, usd=0.05))
    anthropic_up.default = Reply(text="ok", usage=(1, 5))
    answered = answered_until_refused(g, _ask, stream=stream)
    # Before: 10 answered, $0.0008 counted.
    assert answered <= 2, f"{answered} answered of a $0.05 budget, each prompt ~$0.03 of input ({used(g):.6f} counted)"


def test_an_honest_count_is_kept(gateway, openai_up, anthropic_up):  # noqa: F811
    """The guard: a count the text can make is billed as reported (here 6,000 tokens for 40,000 characters)."""
    g = gateway(frontier_config(openai_up, anthropic_up, usd=1.0))
    anthropic_up.default = Reply(text="ok", usage=(6000, 5))
    assert answered_until_refused(g, _ask, most=1) == 1
    assert used(g) == pytest.approx((6000 * 3 + 5 * 15) / 1e6, rel=1e-6)


def test_cached_input_counts_toward_what_was_read(gateway, openai_up, anthropic_up):  # noqa: F811
    """A prompt read from the cache reports few uncached input tokens: the cached ones count as read, so the count
    stands (1 uncached + 9,000 read from the cache)."""
    g = gateway(frontier_config(openai_up, anthropic_up, usd=1.0))
    anthropic_up.default = Reply(text="ok", usage=(1, 5), cache_read_tokens=9000)
    assert answered_until_refused(g, _ask, most=1) == 1
    # (this price names no cache-read price: reads at the input price; the estimate would add ~1,000 tokens more)
    assert used(g) == pytest.approx((1 * 3 + 9000 * 3 + 5 * 15) / 1e6, rel=1e-6)
