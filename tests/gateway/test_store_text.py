"""`ledger.store_text`: each request's row keeps its last user turn and its answer (plain and streamed, both
APIs), bounded; without it the row keeps neither."""

from __future__ import annotations

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai
from tests.gateway.test_context_overflow import record

Q = [{"role": "user", "content": "first turn"}, {"role": "assistant", "content": "ok"},
     {"role": "user", "content": "What is the capital of France?"}]


def _row(g, rid):
    rec = record(g, rid)  # a stream's row is written as its last bytes leave: wait for it
    assert rec is not None
    return rec


@pytest.mark.parametrize("store", [True, False])
def test_prompt_and_answer_in_the_ledger_row(two_tier, anthropic_up, store):
    g = two_tier(ledger={"store_text": store})
    anthropic_up.default = Reply(text="Paris is the capital.", usage=(9, 5))
    raw = oai(g).chat.completions.with_raw_response.create(model="main", messages=Q)
    plain = _row(g, raw.headers["x-tierwise-request-id"])
    with oai(g).chat.completions.with_streaming_response.create(model="main", messages=Q, stream=True) as r:
        rid = r.headers["x-tierwise-request-id"]
        list(r.iter_lines())
    streamed_oai = _row(g, rid)
    with ant(g).messages.with_streaming_response.create(model="main", max_tokens=50, messages=Q, stream=True) as r:
        rid = r.headers["x-tierwise-request-id"]
        list(r.iter_lines())
    streamed_ant = _row(g, rid)
    for rec in (plain, streamed_oai, streamed_ant):
        if store:
            assert rec.prompt == "What is the capital of France?"
            assert rec.answer == "Paris is the capital."
        else:
            assert rec.prompt is None and rec.answer is None


def test_stored_text_is_bounded(two_tier, anthropic_up):
    from tierwise.gateway import MAX_STORED_TEXT

    g = two_tier(ledger={"store_text": True})
    anthropic_up.default = Reply(text="y" * (MAX_STORED_TEXT + 500), usage=(9, 5))
    long_q = [{"role": "user", "content": "x" * (MAX_STORED_TEXT + 500)}]
    raw = oai(g).chat.completions.with_raw_response.create(model="main", messages=long_q)
    rec = _row(g, raw.headers["x-tierwise-request-id"])
    assert rec.prompt == "x" * MAX_STORED_TEXT and rec.answer == "y" * MAX_STORED_TEXT
