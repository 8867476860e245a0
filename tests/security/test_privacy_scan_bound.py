"""A client that makes the privacy detectors work: every text of a request bound for a remote model is
scanned (about 1-7 s of CPU per million characters, linear: `SE12 ` repeated is among the dearest), and
`max_chars` bounded one text, not their sum: a 32 MB body of many texts each under it cost minutes of
CPU. `privacy.max_request_chars` bounds the sum; past it the remote model is refused (400 in the client's
schema) and a route moves on to a local one, which needs no scan."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.doubles.script import Reply
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config

LIMIT = 10_000
TEXT = "SE12 " * 1000  # 5,000 characters: under the limit alone, over it three times


@pytest.fixture
def g(gateway, openai_up, anthropic_up):
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "remote": ["frontier"], "main": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}})
    cfg["privacy"] = {"classes": {"pii": {}, "secrets": {}}, "ner": {"enabled": False}, "max_request_chars": LIMIT}
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="remote answer")
    return gateway(cfg)


def test_a_request_past_max_request_chars_is_not_scanned_for_a_remote_model(g, openai_up, anthropic_up):
    msgs = [{"role": "user", "content": TEXT + str(i)} for i in range(3)]
    with pytest.raises(openai.BadRequestError) as e:  # a 403 before session 36 (newuser36)
        oai(g).chat.completions.create(model="remote", messages=msgs)
    assert "max_request_chars" in e.value.response.json()["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as ea:
        ant(g).messages.create(model="remote", max_tokens=10, messages=msgs)
    assert ea.value.response.json()["type"] == "error"
    assert not anthropic_up.requests, "the text went to the remote model"
    # a route with a local target moves on to it
    answer = oai(g).chat.completions.create(model="main", messages=msgs)
    assert answer.choices[0].message.content == "local answer"
    # under the limit: scanned and sent
    small = oai(g).chat.completions.create(model="remote", messages=msgs[:1])
    assert small.choices[0].message.content == "remote answer"
