"""Unseen output at the model's own rate (providers/output_rate.py, session 37, costs9). A call cut before its usage
came is billed what it can have written since it was sent; before, at 1,000 tokens a second for every model, so a
model writing 100 a second was counted ten times what it wrote (a Claude Code user's Esc after 10 s of thinking:
10,000 output tokens). Now at the model's `output_tokens_per_second`, or twice the fastest of its own long answers
once five were seen, never above the default. Real gateway, the openai SDK, the OpenAI double as the frontier
($3/$15 per million), memory store."""

from __future__ import annotations

import threading

import openai
import pytest

from tests.budgets.frontier_spend import used
from tests.budgets.test_unseen_output import MESSAGES, _gateway
from tests.doubles import Delay, Gate, Reply
from tests.gateway.conftest import gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tierwise.providers.output_rate import LONG, SEEN, UNSEEN_TOKENS_PER_SECOND, OutputRate

CAP = 5000  # the cut call's max_tokens: more than the default rate writes in the second before its client leaves
INPUT_AT_MOST = 200 * 3 / 1e6  # (its input estimate, a few dozen tokens, with room)


def _cut_after_a_second(g, openai_up) -> float:  # noqa: F811
    """The output tokens counted for a non-streamed call whose client left after a second."""
    release = threading.Event()
    openai_up.default = Gate(release, Reply(text="late", usage=(20, CAP)))
    with pytest.raises(openai.APITimeoutError):
        oai(g, timeout=1.0).chat.completions.create(model="main", max_tokens=CAP, messages=MESSAGES)
    release.set()
    return used(g) / (15 / 1e6)


def test_a_configured_rate_counts_a_cut_call_at_that_rate(gateway, openai_up):  # noqa: F811
    g = _gateway(gateway, openai_up, output_tokens_per_second=50)
    counted = _cut_after_a_second(g, openai_up)
    # Before: 1,000 tokens a second (>= 1,000 counted for the second it ran); now 50 a second.
    assert 50 <= counted < 600, f"{counted:.0f} output tokens counted for a second of a 50-token/s model"


def test_a_measured_rate_counts_a_cut_call_at_twice_the_models_speed(gateway, openai_up):  # noqa: F811
    g = _gateway(gateway, openai_up)
    openai_up.default = Delay(2.0, Reply(text="x" * 1200, usage=(20, 300)))  # 300 tokens in 2 s: ~150 a second
    for _ in range(SEEN):
        oai(g).chat.completions.create(model="main", max_tokens=400, messages=MESSAGES)
    before = used(g)
    counted = _cut_after_a_second(g, openai_up) - before / (15 / 1e6)
    # Before: >= 1,000 for the second it ran; now ~300 a second (twice ~150).
    assert counted < 800, f"{counted:.0f} output tokens counted for a second of a ~150-token/s model"


def test_short_and_slow_answers_do_not_lower_the_rate():
    r = OutputRate()
    for _ in range(SEEN - 1):
        r.observe(1000, 2.0)  # 500 a second
    assert r.per_second() == UNSEEN_TOKENS_PER_SECOND  # (not yet seen enough)
    r.observe(1000, 2.0)
    assert r.per_second() == UNSEEN_TOKENS_PER_SECOND  # (twice 500: the default, never above it)
    r = OutputRate()
    for _ in range(SEEN):
        r.observe(LONG, 2.56)  # 100 a second
    for _ in range(100):
        r.observe(LONG - 1, 100.0)  # a client's short calls: not counted
        r.observe(10_000, 1000.0)  # slow ones (a busy host): the fastest seen is kept
    assert r.per_second() == pytest.approx(200.0)
    assert OutputRate(configured=30.0).per_second() == 30.0


def test_a_rate_of_yes_is_a_config_error(tmp_path, openai_up):  # noqa: F811
    from tests.harness import make_config, two_tier_config
    from tierwise.errors import ConfigError

    cfg = two_tier_config(openai_up.url, openai_up.url, remote_kind="openai")
    cfg["models"]["frontier"]["output_tokens_per_second"] = True
    with pytest.raises(ConfigError, match="output_tokens_per_second"):
        make_config(cfg, tmp_path)
