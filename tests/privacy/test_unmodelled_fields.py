"""Fields no codec models, in the body a same-format upstream gets byte for byte.

A request whose modelled texts hold nothing to redact used to be forwarded as the client sent it
(`source_body`), while the scan read only the canonical projection: a value in an OpenAI
message's `name`, a legacy `function_call`, a `response_format`'s `description`, a content
part's or a tool's extra fields, `tool_choice`, an Anthropic block's extra fields, a tool's
`input_examples`, the `thinking` object, reached the remote model under `pii: redact`. Real HTTP,
official SDKs, recording doubles: the remote must not receive the value, the client still gets
its answer, and a body with nothing to find (ids, signatures, base64 images) still leaves as sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai
from tests.privacy.support import echo_placeholders, privacy_config

EMAIL = "jane.doe@example.com"
FB = {"fb": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}}


@pytest.fixture
def g_openai(gateway, openai_up, anthropic_up):
    """The remote (frontier) model speaks OpenAI Chat, like the client: the body is forwarded."""
    openai_up.default = echo_placeholders
    cfg = privacy_config(anthropic_up.url, openai_up.url, FB)
    cfg["providers"]["localsrv"].update(kind="anthropic", base_url=anthropic_up.url)
    cfg["providers"]["cloud"].update(kind="openai", base_url=openai_up.url + "/v1")
    cfg["server"]["default_route"] = "fb"
    return gateway(cfg)


@pytest.fixture
def g_anthropic(gateway, openai_up, anthropic_up):
    anthropic_up.default = echo_placeholders
    cfg = privacy_config(openai_up.url, anthropic_up.url, FB)
    cfg["server"]["default_route"] = "fb"
    return gateway(cfg)


HI = {"role": "user", "content": "hello"}
FN = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
OPENAI_CASES: dict[str, dict[str, Any]] = {
    "message-name": {"messages": [{"role": "user", "name": EMAIL, "content": "hello"}]},
    "legacy-function-call": {"messages": [
        HI, {"role": "assistant", "content": None,
             "function_call": {"name": "lookup", "arguments": json.dumps({"who": EMAIL})}},
        {"role": "user", "content": "go on"}]},
    "response-format-description": {"messages": [HI], "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "description": f"for {EMAIL}", "schema": {"type": "object"}}}},
    "content-part-extra": {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "note": EMAIL}]}]},
    "function-extra": {"messages": [HI], "tools": [{**FN, "function": {**FN["function"], "x_note": EMAIL}}]},
    "tool-choice": {"messages": [HI], "tools": [FN], "tool_choice": {"type": "function",
                                                                    "function": {"name": "f", "x": EMAIL}}},
    # a data: URL that is not base64 is text (it was skipped as a payload: any value hid behind `data:text/plain,`)
    "plain-data-url": {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi",
                                                                  "note": f"data:text/plain,{EMAIL}"}]}]},
    "assistant-refusal": {"messages": [HI, {"role": "assistant", "content": "x", "refusal": f"not {EMAIL}"},
                                       {"role": "user", "content": "go on"}]},
}


@pytest.mark.parametrize("case", list(OPENAI_CASES))
def test_openai_unmodelled_fields_do_not_reach_the_remote(g_openai, openai_up, case):
    if "response_format" in OPENAI_CASES[case]:  # asked for JSON: an answer that is not JSON fails (strict_output)
        openai_up.default = Reply(text='{"ok": true}')
    answer = oai(g_openai).chat.completions.create(model="fb", **OPENAI_CASES[case])
    assert answer.choices[0].message.content  # served (redacted and re-encoded, or by the local tier)
    remote = [r.raw for r in openai_up.requests]
    assert remote, "the remote model got no request"
    assert all(EMAIL.encode() not in raw for raw in remote)


TU = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
TR = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}
ANTHROPIC_CASES: dict[str, dict[str, Any]] = {
    "message-extra": {"messages": [{"role": "user", "content": "hello", "name": EMAIL}]},
    "tool-result-extra": {"messages": [HI, {"role": "assistant", "content": [TU]},
                                       {"role": "user", "content": [{**TR, "note": EMAIL}]}]},
    "tool-use-extra": {"messages": [HI, {"role": "assistant", "content": [{**TU, "note": EMAIL}]},
                                    {"role": "user", "content": [TR]}]},
    "tool-input-examples": {"messages": [HI], "tools": [
        {"name": "f", "input_schema": {"type": "object"}, "input_examples": [{"email": EMAIL}]}]},
    "tool-choice": {"messages": [HI], "tools": [{"name": "f", "input_schema": {"type": "object"}}],
                    "tool_choice": {"type": "tool", "name": "f", "x": EMAIL}},
    "image-source-extra": {"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://example.org/a.png", "note": EMAIL}},
        {"type": "text", "text": "hi"}]}]},
    "thinking-config": {"messages": [HI], "max_tokens": 2000,
                        "thinking": {"type": "enabled", "budget_tokens": 1024, "x": EMAIL}},
}


# Re-encoded, the canonical `thinking` object still holds the value: the leak check refuses the
# remote call and the local tier answers.
SERVED_LOCALLY = {"thinking-config"}


@pytest.mark.parametrize("case", list(ANTHROPIC_CASES))
def test_anthropic_unmodelled_fields_do_not_reach_the_remote(g_anthropic, anthropic_up, openai_up, case):
    kw = {"max_tokens": 100, **ANTHROPIC_CASES[case]}
    answer = ant(g_anthropic).messages.create(model="fb", **kw)
    assert answer.content
    remote = [r.raw for r in anthropic_up.requests]
    assert all(EMAIL.encode() not in raw for raw in remote)
    if case in SERVED_LOCALLY:
        assert remote == [] and openai_up.requests
    else:
        assert remote, "the remote model got no request"


def test_a_body_with_nothing_to_find_still_leaves_as_sent(g_anthropic, anthropic_up):
    """Ids, thinking signatures and base64 images are not text: high-entropy as they are, they
    must not be taken for keys (`secrets: block` would refuse every tool conversation)."""
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    tu = {"type": "tool_use", "id": "toolu_01XFDUDYJgAACzvnptvVoYEL", "name": "f", "input": {}}
    messages = [
        {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                  "data": png}},
                                     {"type": "text", "text": "what is this?"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "look at it", "signature": "EqQBCkgIARABGAIiQL3Jz7kcm2J7Zc1ZT4f9X0wPp6"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3"},
            tu]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tu["id"], "content": "ok"}]},
    ]
    ant(g_anthropic).messages.create(model="fb", max_tokens=100, messages=messages,
                                     tools=[{"name": "f", "input_schema": {"type": "object"}}])
    sent = json.loads(anthropic_up.requests[-1].raw)
    assert sent["messages"] == messages  # forwarded as sent: nothing refused, redacted or re-encoded


def test_the_model_name_in_the_body_is_not_scanned(gateway, openai_up, anthropic_up):
    """The body's `model` is the name the client asked for; the upstream's model id replaces it
    before the body leaves. A detector's guess on it (NER reads `claude-3-5-haiku-...` as a person)
    must not keep every request of that route local."""
    anthropic_up.default = echo_placeholders
    route = "claude-3-5-haiku-20241022"
    cfg = privacy_config(openai_up.url, anthropic_up.url,
                         {route: {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}},
                         policy={"pii": "redact", "secrets": "block", "codename": "local_only"})
    cfg["privacy"]["classes"]["codename"] = {"detectors": ["CODENAME"]}
    cfg["privacy"]["user"] = {"dictionaries": {"CODENAME": ["haiku"]}}
    cfg["server"]["default_route"] = route
    g = gateway(cfg)
    ant(g).messages.create(model=route, max_tokens=50, messages=[HI])
    assert len(anthropic_up.requests) == 1 and openai_up.requests == []
    assert json.loads(anthropic_up.requests[0].raw)["messages"] == [HI]
    # control: the same word in a text keeps the request local
    ant(g).messages.create(model=route, max_tokens=50, messages=[{"role": "user", "content": "a haiku"}])
    assert len(anthropic_up.requests) == 1 and len(openai_up.requests) == 1
