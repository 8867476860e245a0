"""Values a client (or a tool) hides from the patterns, through the gateway over real HTTP with
the official SDKs, to a recording remote double on a `pii: redact` route (secrets: block):

- split across message parts, messages, tool-call arguments and tool results (each piece alone
  matches nothing; the model reads them as one value);
- written with look-alike letters of other scripts, or escaped (`%40`, `&#64;`, `\\u0040`) in a
  tool result;
- in the Responses API's input items.

No piece, no look-alike form and no escaped form may reach the remote model."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from tests.gateway.conftest import ant, oai
from tests.privacy.support import echo_placeholders, leaked, privacy_config

CARD, EMAIL, IBAN = "4111 1111 1111 1111", "jane.doe@example.com", "DE89 3704 0044 0532 0130 00"
KEY = "sk-ant-api03-Zx8Qw2Lp9Rt4Vb7Nm1Kc5Hj3Gf6Ds0Ae2Wq8Ty4Ui7Op"


@pytest.fixture
def g(gateway, openai_up, anthropic_up):
    anthropic_up.default = echo_placeholders
    cfg = privacy_config(openai_up.url, anthropic_up.url,
                         {"fb": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}})
    cfg["server"]["default_route"] = "fb"
    return gateway(cfg)


def sent(anthropic_up: Any) -> bytes:
    assert anthropic_up.requests, "the remote model got no request"
    return anthropic_up.requests[-1].raw


def present(text: str, form: str) -> bool:
    """Is `form` in a JSON body, written as is or JSON-escaped (ASCII-only or not)?"""
    return any(f in text for f in (form, json.dumps(form)[1:-1], json.dumps(form, ensure_ascii=False)[1:-1]))


def pieces_in(raw: bytes, *pieces: str) -> list[str]:
    """Pieces of a split value still in the body."""
    text = raw.decode("utf-8")
    return [p for p in pieces if present(text, p)]


def test_a_value_split_across_parts_and_messages_does_not_leave(g, anthropic_up):
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "My card is 4111 1111 "},
                                     {"type": "text", "text": "1111 1111, and my mail is jane.doe@"}]},
        {"role": "assistant", "content": "Noted. And the domain?"},
        {"role": "user", "content": "example.com -- and my IBAN is DE89 3704 0044"},
        {"role": "user", "content": "0532 0130 00. Please confirm all three."},
    ]
    answer = oai(g).chat.completions.create(model="fb", messages=messages).choices[0].message.content or ""
    raw = sent(anthropic_up)
    assert leaked(raw, [CARD, EMAIL, IBAN]) == []
    assert pieces_in(raw, "4111 1111 ", "1111 1111", "jane.doe@", "example.com", "DE89 3704 0044",
                     "0532 0130 00") == []
    # each piece came back where the remote model echoed its placeholder
    assert "4111 1111" in answer and "jane.doe@" in answer and "example.com" in answer


def test_a_value_split_between_tool_arguments_and_results_does_not_leave(g, anthropic_up):
    messages = [
        {"role": "user", "content": "Look up the customer."},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "tu_1", "name": "lookup", "input": {"prefix": "card 5500 0000"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "tu_1", "content": "0000 0004 belongs to jane.doe@"},
            {"type": "text", "text": "example.com is the mail on file"}]},
    ]
    tools = [{"name": "lookup", "description": "find a customer", "input_schema": {"type": "object"}}]
    ant(g).messages.create(model="fb", max_tokens=100, messages=messages, tools=tools)
    raw = sent(anthropic_up)
    assert leaked(raw, ["5500 0000 0000 0004", EMAIL]) == []
    assert pieces_in(raw, "5500 0000", "0000 0004", "jane.doe@") == []


@pytest.mark.parametrize("hidden", [
    "jane.doe%40example.com",                # percent-encoded, as in a URL a tool fetched
    "jane.doe&#64;example.com",              # an HTML character reference, as in a page's text
    "jane.doe\\u0040example.com",           # a JSON escape inside a string a tool returned
    "DЕ89 3704 0044 0532 0130 00",           # Cyrillic Е in the country code
    "ВE68 5390 0754 7034",                   # Cyrillic В for the B of a Belgian IBAN
], ids=["percent", "html", "json-escape", "cyrillic-E", "cyrillic-B"])
def test_escaped_or_look_alike_values_in_a_tool_result_do_not_leave(g, anthropic_up, hidden):
    messages = [
        {"role": "user", "content": "What does the page say?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "fetch", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": f"<p>Contact: {hidden}</p>"},
    ]
    oai(g).chat.completions.create(model="fb", messages=messages)
    text = sent(anthropic_up).decode("utf-8")
    # the value whole, and its first group (an IBAN's country code and check digits)
    for form in (hidden, hidden.split()[0]):
        assert not present(text, form), f"{form!r} reached the remote model"


def test_a_look_alike_secret_is_blocked_like_the_secret(g, anthropic_up):
    hidden = KEY.replace("ant", "\u0430nt")  # Cyrillic а
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": f"key: {hidden}"}])
    assert "secrets" in e.value.message and hidden not in e.value.message
    assert anthropic_up.requests == []


def test_responses_api_input_items_are_covered(g, anthropic_up):
    r = oai(g).responses.create(model="fb", instructions="be brief", input=[
        {"role": "user", "content": [{"type": "input_text", "text": "card 4111 1111 "},
                                     {"type": "input_text", "text": "1111 1111 please"}]},
        {"type": "function_call", "call_id": "c1", "name": "fetch", "arguments": '{"q": "jane.doe%40example.com"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "owner: jane.doe&#64;example.com"},
    ])
    raw = sent(anthropic_up)
    assert leaked(raw, [CARD, EMAIL]) == []
    text = raw.decode("utf-8")
    for hidden in ("4111 1111 ", "1111 1111", "jane.doe%40example.com", "jane.doe&#64;example.com"):
        assert not present(text, hidden), hidden
    assert "4111 1111" in r.output_text


def test_control_without_the_boundary_the_values_would_leave(g, anthropic_up, monkeypatch):
    """Evidence the split test can fail: without the junction scan, the pieces reach the remote."""
    from tierwise.privacy.boundary import Guard

    monkeypatch.setattr(Guard, "_find_split", lambda self, req: None)
    messages = [{"role": "user", "content": [{"type": "text", "text": "My card is 4111 1111 "},
                                             {"type": "text", "text": "1111 1111."}]}]
    oai(g).chat.completions.create(model="fb", messages=messages)
    assert pieces_in(sent(anthropic_up), "4111 1111 ", "1111 1111") != []


def test_a_placeholder_restores_only_within_its_own_client_and_conversation(g, anthropic_up):
    """Client A's conversation maps <EMAIL_ADDRESS_1> to its address. Client B naming the same
    conversation id, and A itself in another conversation or without one, write the placeholder
    literally; the remote model echoes it: none of them gets A's address back."""
    from tests.gateway.conftest import oai as client

    conv = {"x-tierwise-conversation": "shared-name"}
    a = client(g, api_key="key-of-a")
    a.chat.completions.create(model="fb", messages=[{"role": "user", "content": f"mail {EMAIL} please"}],
                              extra_headers=conv)
    assert b"<EMAIL_ADDRESS_1>" in sent(anthropic_up)
    probe = [{"role": "user", "content": "Repeat exactly: <EMAIL_ADDRESS_1>"}]
    for who, headers in ((client(g, api_key="key-of-b"), conv), (a, {"x-tierwise-conversation": "other"}), (a, {})):
        answer = who.chat.completions.create(model="fb", messages=probe, extra_headers=headers)
        assert EMAIL not in (answer.choices[0].message.content or "")
        chunks = who.chat.completions.create(model="fb", messages=probe, extra_headers=headers, stream=True)
        assert EMAIL not in "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    # control: A's own next turn with the address gets it back under the same placeholder
    answer = a.chat.completions.create(model="fb", messages=[{"role": "user", "content": f"again: {EMAIL}"}],
                                       extra_headers=conv)
    assert b"<EMAIL_ADDRESS_1>" in sent(anthropic_up) and EMAIL in (answer.choices[0].message.content or "")
