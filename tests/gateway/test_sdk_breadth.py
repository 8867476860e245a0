"""Official-SDK features first-time users reach for, through the gateway: each works as the real API
does, or fails with a clear error in that API's schema."""

from __future__ import annotations

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import ant


def openai_gw(gateway, openai_up):
    return gateway({
        "ledger": {"path": "ledger.db"},
        "providers": {"local": {"kind": "openai", "base_url": openai_up.url + "/v1", "locality": "local"}},
        "models": {"m": {"provider": "local", "model": "upstream-model"}},
        "routes": {"main": ["m"]},
    })


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_stop_sequence_from_an_upstream_that_names_it(gateway, openai_up, stream):
    """An Anthropic client's `stop_sequences` on a vLLM upstream: vLLM names the stop string it ended on
    (`choices[].stop_reason`), so the client gets `stop_reason: stop_sequence` with `stop_sequence` set,
    as from Anthropic itself (it was `end_turn` with `stop_sequence: null`)."""
    g = openai_gw(gateway, openai_up)
    openai_up.default = Reply(text="one two", matched_stop="END")
    c = ant(g)
    kw = {"model": "main", "max_tokens": 50, "stop_sequences": ["END", "STOP"],
          "messages": [{"role": "user", "content": "count"}]}
    if stream:
        with c.messages.stream(**kw) as s:
            for _ in s:
                pass
            m = s.get_final_message()
    else:
        m = c.messages.create(**kw)
    assert openai_up.requests[-1].body["stop"] == ["END", "STOP"]
    assert m.stop_reason == "stop_sequence" and m.stop_sequence == "END"
    assert m.content[0].text == "one two"
    # A natural end stays `end_turn` with no stop sequence.
    openai_up.default = Reply(text="one two")
    m = c.messages.create(**kw)
    assert m.stop_reason == "end_turn" and m.stop_sequence is None
