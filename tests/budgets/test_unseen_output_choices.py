"""Unseen output of a call asking `n` choices (session 38's review, review38e; costs8-10 timed one sequence). An
OpenAI-compatible upstream writes the n choices side by side, n times the model's rate: a non-streamed call of n=8
cut after a second was counted what one choice writes in a second. And a completed call of n choices taught the
deployment's rate its total tokens over its seconds: n times the model's speed, so every later cut call (other
clients' included) was counted up to n times what it wrote. Real gateway, the openai SDK, the OpenAI double as the
frontier ($3/$15 per million), memory store."""

from __future__ import annotations

import threading

import openai
import pytest

from tests.budgets.frontier_spend import used
from tests.budgets.test_unseen_output import MESSAGES, _gateway
from tests.doubles import Delay, Gate, Reply
from tests.gateway.conftest import gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tierwise.providers.output_rate import SEEN

CAP = 5000


def _cut_after_a_second(g, openai_up, n: int) -> float:  # noqa: F811
    """The output tokens counted for a non-streamed call of `n` choices whose client left after a second."""
    release = threading.Event()
    openai_up.default = Gate(release, Reply(text="late", usage=(20, CAP)))
    with pytest.raises(openai.APITimeoutError):
        oai(g, timeout=1.0).chat.completions.create(model="main", max_tokens=CAP, n=n, messages=MESSAGES)
    release.set()
    return used(g) / (15 / 1e6)


def test_a_cut_call_of_eight_choices_counts_eight_writers(gateway, openai_up):  # noqa: F811
    g = _gateway(gateway, openai_up, output_tokens_per_second=50)
    counted = _cut_after_a_second(g, openai_up, n=8)
    # Before: ~50-100 (one choice's second); the upstream wrote eight.
    assert counted >= 8 * 50, f"{counted:.0f} output tokens counted for a second of 8 choices at 50 tokens/s"


def test_choices_do_not_teach_a_faster_rate(gateway, openai_up):  # noqa: F811
    g = _gateway(gateway, openai_up)
    # 4 choices of 300 tokens in 2 s: the model writes ~150 a second (each choice), not 600
    openai_up.default = Delay(2.0, Reply(text="x" * 1200, usage=(20, 1200)))
    for _ in range(SEEN):
        oai(g).chat.completions.create(model="main", max_tokens=400, n=4, messages=MESSAGES)
    before = used(g)
    counted = _cut_after_a_second(g, openai_up, n=1) - before / (15 / 1e6)
    # Before: ~1,000 (twice 600 a second, at most the default 1,000); now ~300 a second (twice ~150).
    assert counted < 800, f"{counted:.0f} output tokens counted for a second of a ~150-token/s model"
