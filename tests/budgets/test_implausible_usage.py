"""An upstream that reports fewer output tokens than its answer's characters could make (a host that under-reports,
an Anthropic-format stream whose final `message_delta` usage says 0 after `message_start`'s placeholder of 1) is
billed as one that reports none: the answer's characters ÷ 4 (`providers/usage_bounds.py`, `too_few`). Before
session 34 (costs6) only a count of exactly 0 was doubted: 10,000 characters reported as 1 output token counted
$0.000315 an answer, and a $0.05 budget answered 10 of 10 (each $0.0375 at the characters). Real gateway, the
openai SDK, the Anthropic double, memory store."""

from __future__ import annotations

import pytest

from tests.budgets.frontier_spend import answered_of, frontier_config
from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)

TEXT = "word " * 2000  # 10,000 characters: at least 312 tokens by any tokenizer, 2,500 at 4 characters a token


@pytest.mark.parametrize("usage", [(100, 1), (0, 0)])
@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_reported_as_almost_no_tokens_is_billed_its_characters(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                         usage, stream):
    anthropic_up.default = Reply(text=TEXT, usage=usage)
    g = gateway(frontier_config(openai_up, anthropic_up, usd=0.05))
    answered = answered_of(g, 10, max_tokens=4000, stream=stream, messages=[{"role": "user", "content": "write"}])
    # each answer is $0.0375 at its characters: two make the $0.05 cap (the 'remaining' overrun: one request)
    assert answered <= 2, f"{answered} of 10 answered under a $0.05 budget (reported usage {usage})"


def test_an_honest_count_is_believed(gateway, openai_up, anthropic_up):  # noqa: F811
    """Prose at its real count (350 characters, 400 tokens reported) is billed what was reported, not more."""
    anthropic_up.default = Reply(text="answer " * 50, usage=(100, 400))
    g = gateway(frontier_config(openai_up, anthropic_up, usd=0.05))
    answered = answered_of(g, 12, max_tokens=400, messages=[{"role": "user", "content": "write"}])
    assert answered == 8  # $0.0063 each: seven under $0.05, the eighth admitted on the last $0.0059
