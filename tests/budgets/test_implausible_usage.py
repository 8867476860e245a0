"""An upstream that reports fewer output tokens than its answer's characters could make (a host that under-reports,
an Anthropic-format stream whose final `message_delta` usage says 0 after `message_start`'s placeholder of 1) is
billed as one that reports none: the answer's characters ÷ 4 (`providers/deployment.py`, `_too_few`). Before
session 34 (costs6) only a count of exactly 0 was doubted: 10,000 characters reported as 1 output token counted
$0.000315 an answer, and a $0.05 budget answered 10 of 10 (each $0.0375 at the characters). Real gateway, the
openai SDK, the Anthropic double, memory store."""

from __future__ import annotations

import openai
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import GatewayServer, make_config, two_tier_config

TEXT = "word " * 2000  # 10,000 characters: at least 312 tokens by any tokenizer, 2,500 at 4 characters a token


@pytest.mark.parametrize("usage", [(100, 1), (0, 0)])
@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_reported_as_almost_no_tokens_is_billed_its_characters(openai_up, anthropic_up, tmp_path,  # noqa: F811
                                                                         usage, stream):
    anthropic_up.default = Reply(text=TEXT, usage=usage)
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["models"]["frontier"]["price"] = {"input": 3, "output": 15}
    cfg["budgets"] = {"limits": [{"name": "cap", "usd": 0.05}]}
    g = GatewayServer(make_config(cfg, tmp_path)).start()
    answered = 0
    try:
        client = oai(g)
        for _ in range(10):
            try:
                r = client.chat.completions.create(model="main", max_tokens=4000, stream=stream,
                                                   messages=[{"role": "user", "content": "write"}])
                if stream:
                    for _ in r:
                        pass
                answered += 1
            except openai.RateLimitError:
                pass
    finally:
        g.stop()
    # each answer is $0.0375 at its characters: two make the $0.05 cap (the 'remaining' overrun: one request)
    assert answered <= 2, f"{answered} of 10 answered under a $0.05 budget (reported usage {usage})"


def test_an_honest_count_is_believed(openai_up, anthropic_up, tmp_path):  # noqa: F811
    """Prose at its real count (350 characters, 400 tokens reported) is billed what was reported, not more."""
    anthropic_up.default = Reply(text="answer " * 50, usage=(100, 400))
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["models"]["frontier"]["price"] = {"input": 3, "output": 15}
    cfg["budgets"] = {"limits": [{"name": "cap", "usd": 0.05}]}
    g = GatewayServer(make_config(cfg, tmp_path)).start()
    answered = 0
    try:
        client = oai(g)
        for _ in range(12):
            try:
                client.chat.completions.create(model="main", max_tokens=400,
                                               messages=[{"role": "user", "content": "write"}])
                answered += 1
            except openai.RateLimitError:
                pass
    finally:
        g.stop()
    assert answered == 8  # $0.0063 each: seven under $0.05, the eighth admitted on the last $0.0059
