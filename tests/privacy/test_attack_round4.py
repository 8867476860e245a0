"""Privacy attack round 4 (session 23): the tool-name allowance of the leak check, values split across the
blocks of one message, and the other places a tool's name travels. Real HTTP, the official SDKs, upstream
doubles that record every body; `pii: redact` with NER, the remote model on either wire format."""

from __future__ import annotations

import json

from tests.gateway.conftest import ant, oai
from tests.privacy.test_tool_name_exemption import _sent, _tool, remote  # noqa: F401  (the fixture)

EMAIL = "jane.doe@example.com"
MENTION = "Please email Jordan about the contract; Jordan signs for us."


def test_a_participant_name_equal_to_a_tools_name_is_not_allowed_as_one(remote):  # noqa: F811
    """The allowance is for `"name":"Jordan"` members where a tool's name goes, counted: an OpenAI message's
    participant `name` is the same JSON member, and must not ride on it."""
    g, up = remote
    tool = {"type": "function", "function": {"name": "Jordan", "description": "Look a contact up.",
                                             "parameters": {"type": "object", "properties": {}}}}
    r = oai(g).chat.completions.create(model="fb", tools=[tool], messages=[
        {"role": "user", "name": "Jordan", "content": MENTION}])
    assert r.choices[0].message.content
    for rec in up.requests:
        assert json.dumps(json.loads(rec.raw)).count("Jordan") <= 1, rec.raw


def test_tool_choice_and_calls_naming_the_tool_are_allowed_and_nothing_more(remote):  # noqa: F811
    g, up = remote
    r = ant(g).messages.create(model="fb", max_tokens=50, tools=[_tool("Jordan")],
                               tool_choice={"type": "tool", "name": "Jordan"}, messages=[
        {"role": "user", "content": "Look up the contract."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Jordan", "input": {"q": "a"}},
                                          {"type": "tool_use", "id": "t2", "name": "Jordan", "input": {"q": "b"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": MENTION},
                                     {"type": "tool_result", "tool_use_id": "t2", "content": "Jordan"}]}])
    assert r.content
    raw = json.dumps(_sent(up)[-1])
    assert raw.count("Jordan") == 4, raw  # the definition, two calls, tool_choice


def test_an_address_split_across_two_blocks_of_one_message_with_a_joiner(remote):  # noqa: F811
    g, up = remote
    r = ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "text", "text": "write to jane.doe@"}, {"type": "text", "text": "\u200dexample.com today"}]}])
    assert r.content
    for rec in up.requests:
        assert b"jane.doe" not in rec.raw and b"example.com" not in rec.raw, rec.raw


def test_an_address_split_between_a_tool_result_and_the_text_after_it(remote):  # noqa: F811
    g, up = remote
    r = ant(g).messages.create(model="fb", max_tokens=50, tools=[_tool("lookup")], messages=[
        {"role": "user", "content": "Find the contact."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "mail: jane.doe@"},
                                     {"type": "text", "text": "example.com is the domain"}]}])
    assert r.content
    for rec in up.requests:
        assert b"jane.doe" not in rec.raw, rec.raw


def test_responses_input_items_naming_the_tool(remote):  # noqa: F811
    g, up = remote
    r = oai(g).responses.create(model="fb", tools=[{"type": "function", "name": "Jordan", "description": "Look up.",
                                                     "parameters": {"type": "object", "properties": {}}}], input=[
        {"role": "user", "content": "Look up the contract."},
        {"type": "function_call", "call_id": "c1", "name": "Jordan", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": MENTION},
        {"role": "user", "content": [{"type": "input_text", "text": MENTION}]}])
    assert r.output
    raw = json.dumps(_sent(up)[-1])
    assert raw.count("Jordan") == 2, raw  # the definition and the call
