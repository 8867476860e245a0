"""What a route re-sends after a timeout (session 28's new user; newuser27b's leftover). A call that timed out while
the upstream already had the whole request and was answering (a model writing until its context is full, a prompt it
reads for longer than `timeouts.read`) is not retried on the same target: the same request runs as long again, holding
a local slot or paying a remote model twice (with `retries: 1` a runaway local answer held the slot twice before the
504). The route's next target is tried, since nothing reached the client. An answer that has started streaming to the
client is never re-sent anywhere. A non-streamed answer whose connection was cut mid-body is retried (nothing reached
the client; a dropped connection is a blip). Real HTTP on loopback, the official openai SDK (docs/errors-and-fallback.md).
"""

from __future__ import annotations

import threading

import anthropic
import openai
import pytest

from tests.doubles.script import CutStream, Delay, Hold, Reply
from tests.harness import two_tier_config

MSG = [{"role": "user", "content": "hi"}]


def _cfg(openai_url: str, anthropic_url: str, targets: list[str]) -> dict:
    cfg = two_tier_config(openai_url, anthropic_url, routes={
        "main": {"policy": "fallback", "targets": targets, "retries": 1, "backoff_base": 0}})
    cfg["providers"]["localsrv"]["timeouts"] = {"connect": 1, "read": 0.5}
    return cfg


def _client(g: object) -> openai.OpenAI:
    return g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0))  # type: ignore[attr-defined]


def test_a_timeout_while_the_local_model_answers_moves_on_without_a_retry(gateway, openai_up, anthropic_up):
    # Before: local, local again (the retry held its slot a second read timeout), then the frontier.
    g = gateway(_cfg(openai_up.url, anthropic_up.url, ["local", "frontier"]))
    openai_up.default = Delay(3, Reply(text="late"))
    anthropic_up.default = Reply(text="from the frontier")
    r = _client(g).chat.completions.create(model="main", messages=MSG)
    assert r.choices[0].message.content == "from the frontier"
    assert len(openai_up.requests) == 1, len(openai_up.requests)


def test_a_single_target_that_timed_out_while_answering_is_not_asked_again(gateway, openai_up, anthropic_up):
    # Before: two calls (retries: 1), then the 504.
    g = gateway(_cfg(openai_up.url, anthropic_up.url, ["local"]))
    openai_up.default = Delay(3, Reply(text="late"))
    with pytest.raises(openai.APIStatusError) as e:
        _client(g).chat.completions.create(model="main", messages=MSG)
    assert e.value.status_code == 504
    assert len(openai_up.requests) == 1, len(openai_up.requests)


def test_a_stream_whose_upstream_took_it_and_sent_nothing_moves_on_without_a_retry(gateway, openai_up, anthropic_up):
    # The local server sent its 200 and then nothing for longer than timeouts.read. Before: asked twice.
    g = gateway(_cfg(openai_up.url, anthropic_up.url, ["local", "frontier"]))
    release = threading.Event()
    openai_up.default = Hold(0, release, Reply(text="never"))
    anthropic_up.default = Reply(text="streamed by the frontier")
    try:
        s = _client(g).chat.completions.create(model="main", messages=MSG, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in s if c.choices)
    finally:
        release.set()
    assert text == "streamed by the frontier"
    assert len(openai_up.requests) == 1, len(openai_up.requests)


def test_an_answer_that_started_streaming_to_the_client_is_never_sent_again(gateway, openai_up, anthropic_up):
    g = gateway(_cfg(openai_up.url, anthropic_up.url, ["local", "frontier"]))
    release = threading.Event()
    openai_up.default = Hold(2, release, Reply(text="one two three four five"))
    got = []
    try:
        with pytest.raises(openai.APIError):  # noqa: PT012
            for c in _client(g).chat.completions.create(model="main", messages=MSG, stream=True):
                got.append(c)
    finally:
        release.set()
    assert got  # the opening reached the client
    assert len(openai_up.requests) == 1 and not anthropic_up.requests


def test_a_body_cut_mid_answer_is_retried_on_the_same_target(gateway, openai_up, anthropic_up):
    # Nothing reached the client and a dropped connection is a blip: the retry stays.
    g = gateway(_cfg(openai_up.url, anthropic_up.url, ["local", "frontier"]))
    openai_up.script(CutStream(1, Reply(text="cut")), Reply(text="whole"))
    r = _client(g).chat.completions.create(model="main", messages=MSG)
    assert r.choices[0].message.content == "whole"
    assert len(openai_up.requests) == 2 and not anthropic_up.requests


def test_when_every_target_ran_out_while_answering_the_sdk_is_told_not_to_retry(gateway, openai_up, anthropic_up):
    # Before: a 503 "every target failed" with no x-should-retry: the SDK's two retries ran the same request on both
    # targets twice more (each one's slot or bill for another timeout).
    cfg = _cfg(openai_up.url, anthropic_up.url, ["local", "frontier"])
    cfg["providers"]["cloud"]["timeouts"] = {"connect": 1, "read": 0.5}
    g = gateway(cfg)
    openai_up.default = Delay(3, Reply(text="late"))
    anthropic_up.default = Delay(3, Reply(text="late too"))
    client = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="test", max_retries=2))
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model="main", messages=MSG)
    assert e.value.status_code == 504, e.value
    assert e.value.response.headers.get("x-should-retry") == "false", e.value.response.headers
    assert len(openai_up.requests) == 1 and len(anthropic_up.requests) == 1


def test_an_anthropic_client_gets_anthropics_own_timeout_type(gateway, openai_up, anthropic_up):
    # Anthropic's API answers a 504 with `timeout_error` (api_error before: the type of a 500).
    g = gateway(_cfg(openai_up.url, anthropic_up.url, ["local"]))
    openai_up.default = Delay(3, Reply(text="late"))
    client = g.keep(anthropic.Anthropic(base_url=g.url, api_key="test", max_retries=0))
    with pytest.raises(anthropic.APIStatusError) as e:
        client.messages.create(model="main", max_tokens=16, messages=MSG)
    assert e.value.status_code == 504
    assert e.value.body["error"]["type"] == "timeout_error", e.value.body  # type: ignore[index]
