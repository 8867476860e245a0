"""Anthropic message threads (`thread: {"type": "create" | "continue"}`): the server keeps the conversation and
each later turn sends only its new messages. The gateway routes each turn on its own, possibly to another
provider, and its rules, cache, privacy guard and verifiers read the whole conversation from the request, so it
holds no threads: it refuses `thread` the way Anthropic refuses a request it cannot thread
(400 with `error.details.error_code: thread_unsupported_request`), and the SDKs go on with the full history.

The anthropic SDKs' tool runners thread by default: before, the gateway ignored the field, answered the first
turn, and the second turn reached it as a bare `tool_result` (an upstream 400, or an answer without context)."""

from __future__ import annotations

import anthropic
import httpx
import pytest
from anthropic import beta_tool

from tests.doubles import Reply, ToolCall
from tests.gateway.conftest import ant


def routes(gateway, openai_up, anthropic_up):
    return gateway({
        "ledger": {"path": "ledger.db"},
        "providers": {"o": {"kind": "openai", "base_url": openai_up.url + "/v1", "locality": "local"},
                      "a": {"kind": "anthropic", "base_url": anthropic_up.url}},
        "models": {"om": {"provider": "o", "model": "local-model"}, "am": {"provider": "a", "model": "claude"}},
        "routes": {"O": ["om"], "A": ["am"]},
    })


@beta_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.mark.parametrize("route", ["O", "A"])
def test_tool_runner_gets_its_tool_result_answered_with_the_whole_history(gateway, openai_up, anthropic_up, route):
    g = routes(gateway, openai_up, anthropic_up)
    up = openai_up if route == "O" else anthropic_up
    up.script(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]), Reply(text="It is sunny."))
    runner = ant(g).beta.messages.tool_runner(
        model=route, max_tokens=100, tools=[get_weather], messages=[{"role": "user", "content": "Weather in Paris?"}])
    final = runner.until_done()
    assert final.content[-1].text == "It is sunny."
    calls = [r.body for r in up.requests if r.path.endswith(("/chat/completions", "/messages"))]
    assert len(calls) == 2
    assert all("thread" not in body for body in calls)
    # The second call carries the question, the tool call and its result, not the result alone.
    second = calls[1]["messages"]
    assert second[0]["content"] in ("Weather in Paris?", [{"type": "text", "text": "Weather in Paris?"}])
    assert "sunny in Paris" in str(second[-1])
    assert len(second) == 3


@pytest.mark.parametrize("thread", [{"type": "create"}, {"type": "continue", "previous_message_id": "msg_x"}])
def test_a_thread_is_refused_in_anthropic_words_and_reaches_no_upstream(gateway, openai_up, anthropic_up, thread):
    g = routes(gateway, openai_up, anthropic_up)
    body = {"model": "A", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], "thread": thread}
    r = httpx.post(g.url + "/v1/messages", json=body)
    assert r.status_code == 400
    err = r.json()
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert err["error"]["details"]["error_code"] == "thread_unsupported_request"
    assert "thread" in err["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).beta.messages.create(**body)
    assert e.value.body["error"]["details"]["error_code"] == "thread_unsupported_request"
    assert not anthropic_up.requests and not openai_up.requests
    # `thread: null` is no thread.
    body["thread"] = None
    assert httpx.post(g.url + "/v1/messages", json=body).json()["content"][0]["text"] == "ok"


def test_a_thread_the_caller_opens_continues_without_one(gateway, openai_up, anthropic_up):
    """`client.beta.messages.thread(..., unsupported_request_behavior="continue_unthreaded")`: each send
    reaches the model with the whole conversation so far."""
    g = routes(gateway, openai_up, anthropic_up)
    openai_up.script(Reply(text="Hello Ada."), Reply(text="Your name is Ada."))
    t = ant(g).beta.messages.thread(model="O", max_tokens=50, unsupported_request_behavior="continue_unthreaded")
    t.send({"role": "user", "content": "I am Ada."})
    answer = t.send({"role": "user", "content": "What is my name?"})
    assert answer.content[0].text == "Your name is Ada."
    sent = openai_up.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"] == "I am Ada."
