"""n > 1 to an Anthropic deployment is n concurrent calls (`Deployment._fan_out`). Session 38's review (review38e): when
one of them failed, `asyncio.gather` raised at once and left the others running upstream; the request settled its
budget without them, and what they made (the provider bills it) was never counted. Real gateway, the openai SDK, the
Anthropic double as the frontier ($3/$15 per million)."""

from __future__ import annotations

import openai
import pytest

from tests.budgets.frontier_spend import frontier_config, used
from tests.doubles import Delay, Fail, Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import wait_for


def test_the_other_calls_of_a_failed_fan_out_are_billed(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(frontier_config(openai_up, anthropic_up, usd=100.0))
    answer = Reply(text="made", usage=(100_000, 1_000))  # $0.315 each
    anthropic_up.script(Fail(400, "no"), Delay(1.5, answer), Delay(1.5, answer))
    with pytest.raises(openai.BadRequestError):
        oai(g).chat.completions.create(model="main", n=3, max_tokens=1_000,
                                       messages=[{"role": "user", "content": "x" * 1_000}])
    assert wait_for(lambda: len(anthropic_up.requests) == 3)
    # The two calls still running were either cancelled (billed their input read and their unseen output) or
    # answered and billed: never nothing. Before: $0.0 counted, while the provider billed both answers.
    assert used(g) > 0.0
