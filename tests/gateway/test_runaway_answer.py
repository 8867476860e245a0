"""A local model that never stops (session 27's new user: `tool_choice: required`, no `max_tokens`, a tiny model
writing until its context filled): the gateway answered 504 after `timeouts.read` and the openai SDK retried it
twice, holding the local slot three times as long. Now the model's `default_max_tokens` bounds an answer whose
client set none, and a 504 whose upstream was still answering tells the SDKs not to retry (`x-should-retry:
false`) and the client to set max_tokens. Real HTTP on loopback, the official openai SDK."""

from __future__ import annotations

import openai
import pytest

from tests.doubles.script import Delay, Reply
from tests.harness import two_tier_config


def _local_only(openai_url: str, anthropic_url: str, read: float = 10.0, **model: object) -> dict:
    cfg = two_tier_config(openai_url, anthropic_url,
                          routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    cfg["providers"]["localsrv"]["timeouts"] = {"connect": 1, "read": read}
    cfg["models"]["local"].update(model)
    return cfg


def test_a_504_from_an_answer_that_ran_past_the_read_timeout_is_not_retried_by_the_sdk(gateway, openai_up,
                                                                                      anthropic_up):
    # Before: no x-should-retry: the SDK (max_retries=2) sent the same runaway request three times.
    g = gateway(_local_only(openai_up.url, anthropic_up.url, read=0.5))
    openai_up.default = Delay(3, Reply(text="late"))
    client = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="test", max_retries=2))  # closed when g stops
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 504
    assert e.value.response.headers.get("x-should-retry") == "false", e.value.response.headers
    assert "set max_tokens" in str(e.value) and "default_max_tokens" in str(e.value), str(e.value)
    assert len(openai_up.requests) == 1, len(openai_up.requests)


def test_default_max_tokens_bounds_an_answer_whose_client_set_none(gateway, openai_up, anthropic_up):
    # Before: there was no such setting; a request without max_tokens reached the local server unbounded.
    g = gateway(_local_only(openai_up.url, anthropic_up.url, default_max_tokens=64))
    client = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0))  # closed when g stops
    client.chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
    body = openai_up.last.body
    assert (body.get("max_tokens") or body.get("max_completion_tokens")) == 64, body
    with client.chat.completions.stream(model="main", messages=[{"role": "user", "content": "hi"}]) as s:
        s.get_final_completion()
    body = openai_up.last.body
    assert (body.get("max_tokens") or body.get("max_completion_tokens")) == 64, body
    # The client's own value is kept, larger or smaller.
    client.chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}], max_tokens=500)
    body = openai_up.last.body
    assert (body.get("max_tokens") or body.get("max_completion_tokens")) == 500, body


def test_default_max_tokens_is_kept_within_what_the_window_leaves(gateway, openai_up, anthropic_up):
    # Before: the default went out whole after the window check (4,096 on a 4,096-token window with a prompt in it):
    # vLLM refuses prompt + max_tokens past its context, and the route moved on to the frontier for nothing.
    g = gateway(_local_only(openai_up.url, anthropic_up.url, default_max_tokens=4096, context_window=4096))
    client = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0))  # closed when g stops
    client.chat.completions.create(model="main", messages=[{"role": "user", "content": "word " * 500}])
    sent = openai_up.last.body.get("max_tokens") or openai_up.last.body.get("max_completion_tokens")
    assert 2500 < sent < 4096, sent
    with client.chat.completions.stream(model="main", messages=[{"role": "user", "content": "word " * 500}]) as s:
        s.get_final_completion()
    sent = openai_up.last.body.get("max_tokens") or openai_up.last.body.get("max_completion_tokens")
    assert 2500 < sent < 4096, sent


@pytest.mark.parametrize("stream", [False, True])
def test_a_prompt_that_leaves_the_default_no_room_skips_the_model_without_a_call(gateway, openai_up, anthropic_up,
                                                                                 stream):
    # Before (session 28): a prompt ~980 tokens in a 1,024 window went out with max_tokens 45 (1 once the prompt
    # filled it): a truncated answer, taken as the model's. Now the default is held to the rule a client's own
    # max_tokens meets (room for it or for 1,024 tokens, window.MIN_OUTPUT): the route moves on, without a call...
    cfg = _local_only(openai_up.url, anthropic_up.url, default_max_tokens=512, context_window=1024)
    cfg["routes"]["main"]["targets"] = ["local", "frontier"]
    g = gateway(cfg)
    anthropic_up.default = Reply(text="from the frontier")
    client = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0))  # closed when g stops
    prompt = [{"role": "user", "content": "word " * 780}]
    if stream:
        with client.chat.completions.stream(model="main", messages=prompt) as s:
            text = s.get_final_completion().choices[0].message.content
    else:
        text = client.chat.completions.create(model="main", messages=prompt).choices[0].message.content
    assert text == "from the frontier" and not openai_up.requests, len(openai_up.requests)
    # ... and with nothing else to try, the client hears why, in its API's schema (a 400, no upstream call)
    g = gateway(_local_only(openai_up.url, anthropic_up.url, default_max_tokens=512, context_window=1024))
    with pytest.raises(openai.BadRequestError) as e:
        client.with_options(base_url=g.url + "/v1").chat.completions.create(model="main", messages=prompt,
                                                                            stream=stream)
    assert e.value.code == "context_length_exceeded" and "1024" in e.value.message, e.value.body
    assert not openai_up.requests
