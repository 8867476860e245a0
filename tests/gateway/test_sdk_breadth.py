"""Official-SDK features first-time users reach for, through the gateway: each works as the real API
does, or fails with a clear error in that API's schema."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai


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


def test_audio_output_is_refused_clearly_not_answered_in_text(gateway, openai_up, anthropic_up):
    """`modalities: ["text", "audio"]` was dropped silently, and the client got a text answer with
    `audio: null`. Now a 400 in OpenAI's schema names the field; with `modalities` and `audio` allowed
    by server.forwarding it reaches an OpenAI upstream, and an Anthropic one refuses it the same way."""
    msgs = [{"role": "user", "content": "say hi"}]
    audio = {"voice": "alloy", "format": "wav"}
    g = openai_gw(gateway, openai_up)
    c = oai(g)
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="main", messages=msgs, modalities=["text", "audio"], audio=audio)
    assert e.value.body["type"] == "invalid_request_error" and "audio output" in e.value.body["message"]
    assert "server.forwarding.openai_fields" in e.value.body["message"]
    assert not openai_up.requests
    # Text only: nothing to refuse (the field is dropped as before).
    assert c.chat.completions.create(model="main", messages=msgs, modalities=["text"]).choices[0].message.content
    g2 = gateway({
        "server": {"forwarding": {"openai_fields": ["modalities", "audio"]}},
        "ledger": {"path": "ledger2.db"},
        "providers": {"o": {"kind": "openai", "base_url": openai_up.url + "/v1"},
                      "a": {"kind": "anthropic", "base_url": anthropic_up.url}},
        "models": {"om": {"provider": "o", "model": "gpt-audio"}, "am": {"provider": "a", "model": "claude"}},
        "routes": {"O": ["om"], "A": ["am"]},
    })
    c2 = oai(g2)
    c2.chat.completions.create(model="O", messages=msgs, modalities=["text", "audio"], audio=audio)
    sent = openai_up.requests[-1].body
    assert sent["modalities"] == ["text", "audio"] and sent["audio"] == audio
    with pytest.raises(openai.BadRequestError, match="cannot answer with audio"):
        c2.chat.completions.create(model="A", messages=msgs, modalities=["text", "audio"], audio=audio)
    assert not anthropic_up.requests


def test_interleaved_thinking_budget_may_exceed_max_tokens(gateway, anthropic_up):
    """With the `interleaved-thinking-*` beta the thinking budget spans the whole turn and may exceed
    `max_tokens` (Anthropic accepts it). Qwen Code sends exactly that (max_tokens 32000, budget 32000)
    and got a 400 from the gateway. Without the beta the gateway still refuses, as Anthropic does."""
    g = gateway({
        "ledger": {"path": "ledger.db"},
        "providers": {"a": {"kind": "anthropic", "base_url": anthropic_up.url}},
        "models": {"m": {"provider": "a", "model": "claude"}},
        "routes": {"main": ["m"]},
    })
    anthropic_up.default = Reply(text="hi", thinking="hmm", signature="sig-1")
    c = ant(g)
    kw = {"model": "main", "max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 2000},
          "messages": [{"role": "user", "content": "hi"}]}
    m = c.beta.messages.create(**kw, betas=["interleaved-thinking-2025-05-14"])
    assert [b.type for b in m.content] == ["thinking", "text"] and m.content[0].signature == "sig-1"
    sent = anthropic_up.requests[-1]
    assert sent.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert sent.body["max_tokens"] == 2000 and sent.body["thinking"]["budget_tokens"] == 2000
    with c.beta.messages.stream(**kw, betas=["interleaved-thinking-2025-05-14"]) as s:
        assert s.get_final_message().content[1].text == "hi"
    with pytest.raises(anthropic.BadRequestError, match="budget_tokens"):
        c.messages.create(**kw)
    assert len(anthropic_up.requests) == 2


def test_endpoints_tierwise_does_not_offer_say_so_in_the_sdks_schema(gateway, openai_up):
    """Message batches, stored-response retrieval and legacy completions: a 404 in the schema of the
    API the SDK speaks that says the feature is not offered and what to use (it said only "no such
    endpoint"). The Anthropic SDK gets `not_found_error`, the OpenAI SDK `invalid_request_error`."""
    g = openai_gw(gateway, openai_up)
    a, o = ant(g), oai(g)
    batch = [{"custom_id": "1", "params": {"model": "main", "max_tokens": 10,
                                           "messages": [{"role": "user", "content": "hi"}]}}]
    for call in (lambda: a.messages.batches.create(requests=batch), lambda: a.messages.batches.list().data,
                 lambda: a.messages.batches.retrieve("msgbatch_1"), lambda: a.beta.messages.batches.list().data):
        with pytest.raises(anthropic.NotFoundError) as e:
            call()
        assert e.value.body["error"]["type"] == "not_found_error"
        assert "message batches are not supported" in e.value.body["error"]["message"]
    rid = o.responses.create(model="main", input="hi").id
    for call in (lambda: o.responses.retrieve(rid), lambda: o.responses.delete(rid),
                 lambda: o.responses.cancel(rid), lambda: list(o.responses.input_items.list(rid))):
        with pytest.raises(openai.NotFoundError) as e:
            call()
        assert e.value.body["type"] == "invalid_request_error"
        assert "previous_response_id" in e.value.body["message"]
    with pytest.raises(openai.NotFoundError, match="legacy Completions API"):
        o.completions.create(model="main", prompt="hi")


def test_chat_allowed_tools_choice(gateway, openai_up, anthropic_up):
    """Chat Completions' `tool_choice: {"type": "allowed_tools", ...}` (the model may call only the
    listed tools) was a 400 (`tool_choice.type: must be function`). An OpenAI upstream gets the body
    as sent; an Anthropic one is offered only the allowed tools, with `any` for mode `required`."""
    g = gateway({
        "ledger": {"path": "ledger.db"},
        "providers": {"o": {"kind": "openai", "base_url": openai_up.url + "/v1"},
                      "a": {"kind": "anthropic", "base_url": anthropic_up.url}},
        "models": {"om": {"provider": "o", "model": "gpt"}, "am": {"provider": "a", "model": "claude"}},
        "routes": {"O": ["om"], "A": ["am"]},
    })
    tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
             for n in ("read", "write", "delete")]
    choice = {"type": "allowed_tools", "allowed_tools": {
        "mode": "required", "tools": [{"type": "function", "function": {"name": "read"}},
                                      {"type": "function", "function": {"name": "write"}}]}}
    c = oai(g)
    msgs = [{"role": "user", "content": "go"}]
    c.chat.completions.create(model="O", messages=msgs, tools=tools, tool_choice=choice)
    sent = openai_up.requests[-1].body
    assert sent["tool_choice"] == choice and len(sent["tools"]) == 3
    c.chat.completions.create(model="A", messages=msgs, tools=tools, tool_choice=choice)
    sent = anthropic_up.requests[-1].body
    assert [t["name"] for t in sent["tools"]] == ["read", "write"] and sent["tool_choice"] == {"type": "any"}
    # A name that is not among `tools` allows nothing: it is never offered.
    odd = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [
        {"type": "function", "function": {"name": "format_disk"}}, {"type": "function", "function": {"name": "read"}}]}}
    c.chat.completions.create(model="A", messages=msgs, tools=tools, tool_choice=odd)
    sent = anthropic_up.requests[-1].body
    assert [t["name"] for t in sent["tools"]] == ["read"] and sent["tool_choice"] == {"type": "auto"}
    with pytest.raises(openai.BadRequestError, match="allowed_tools.mode"):
        c.chat.completions.create(model="A", messages=msgs, tools=tools, tool_choice={
            "type": "allowed_tools", "allowed_tools": {"mode": "none", "tools": []}})
