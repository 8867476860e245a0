"""A call cut before its usage came is billed what it can have written that nobody saw (providers/usage_bounds.py
`unseen_output`: the time since it was sent at 1,000 tokens a second, at most its output cap): a non-streamed call
whose client left, and a stream of a model that reasons without streaming it (OpenAI's reasoning tokens, Gemini's
thoughts, Claude 4's summarised thinking) cut by its client. Before session 36 (costs8) the first counted its input
only and the second its visible characters ÷ 4: a client that left each reasoning stream before its answer (or
each non-streamed call just before it ended) had the provider bill output the budget never counted. Real gateway,
the openai SDK, the OpenAI double as the frontier ($3/$15 per million), memory store."""

from __future__ import annotations

import threading
import time

import openai
import pytest

from tests.budgets.frontier_spend import used
from tests.doubles import Gate, Hold, Reply
from tests.gateway.conftest import gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import two_tier_config

CAP = 300  # the call's max_tokens: 300 output tokens are $0.0045, written in 0.3 s at the bound's rate
OUTPUT = CAP * 15 / 1e6
MESSAGES = [{"role": "user", "content": "think hard"}]


def _gateway(gateway, openai_up, model: str = "big-model", **frontier):  # noqa: F811
    cfg = two_tier_config(openai_up.url, openai_up.url, remote_kind="openai",
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["models"]["frontier"].update(model=model, price={"input": 3, "output": 15}, **frontier)
    cfg["budgets"] = {"limits": [{"name": "cap", "usd": 1.0}]}
    return gateway(cfg)


def _stream_left_after_its_first_chunk(g, openai_up, **kw) -> None:  # noqa: F811
    """A stream whose upstream sends its opening chunk and then thinks; its client reads that chunk, waits a second
    (the upstream still thinking) and leaves."""
    release = threading.Event()
    openai_up.default = Hold(1, release, Reply(text="the answer after long thought", usage=(20, 2000)))
    s = oai(g).chat.completions.create(model="main", max_tokens=CAP, stream=True, messages=MESSAGES, **kw)
    next(iter(s))
    time.sleep(1.0)
    s.close()
    # the gateway has cut the upstream call before the upstream may answer: on a busy machine the rest of the
    # answer (its usage: 2,000 output tokens, rightly billed) otherwise arrived before the cut was seen
    assert openai_up.wait_until(lambda: openai_up.disconnects >= 1, timeout=20)
    release.set()


def test_a_non_streamed_call_left_by_its_client_counts_what_it_can_have_written(gateway, openai_up):  # noqa: F811
    release = threading.Event()
    openai_up.default = Gate(release, Reply(text="late", usage=(20, CAP)))
    g = _gateway(gateway, openai_up)
    with pytest.raises(openai.APITimeoutError):
        oai(g, timeout=1.0).chat.completions.create(model="main", max_tokens=CAP, messages=MESSAGES)
    release.set()
    assert used(g) >= OUTPUT, f"${used(g)} counted for a call that wrote for a second before its client left"


@pytest.mark.parametrize("how", ["reasoning_effort", "hidden_reasoning", "o3-mini"])
def test_a_reasoning_stream_left_by_its_client_counts_its_unseen_thinking(gateway, openai_up, how):  # noqa: F811
    if how == "hidden_reasoning":
        g, kw = _gateway(gateway, openai_up, hidden_reasoning=True), {}
    elif how == "o3-mini":  # a reasoning model by its id, nothing asked
        g, kw = _gateway(gateway, openai_up, model="o3-mini"), {}
    else:
        g, kw = _gateway(gateway, openai_up), {"reasoning_effort": "high"}
    _stream_left_after_its_first_chunk(g, openai_up, **kw)
    assert used(g) >= OUTPUT, f"${used(g)} counted for a reasoning stream left after a second ({how})"


def test_a_stream_that_shows_what_it_writes_counts_what_it_showed(gateway, openai_up):  # noqa: F811
    """The same cut of a model that streams what it writes (no reasoning asked or known; `hidden_reasoning: false`
    says so of any model): its visible characters, no more."""
    g = _gateway(gateway, openai_up, model="o3-mini", hidden_reasoning=False)
    _stream_left_after_its_first_chunk(g, openai_up)
    assert used(g) < OUTPUT / 10
