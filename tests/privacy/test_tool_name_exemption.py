"""A tool's name exempts the name detectors' finding of that word only where the word names the tool
(session 23). A one-word tool name (`Jordan`, `Paris`: an MCP server's, or a coincidence) exempted the word
from name redaction everywhere in the request, the user's mentions of the person or the place included, and
the leak check, which looks for detected values only, did not look for it. Real HTTP, the official SDKs,
upstream doubles that record every body, the remote model on either wire format."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest

from tests.gateway.conftest import ant
from tests.harness import unavailable
from tests.privacy.support import echo_placeholders, privacy_config

FB = {"fb": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}}
USER_TURN = "Please email Jordan about the contract; Jordan signs for us. Book the hotel in Paris."


@pytest.fixture(params=["anthropic", "openai"])
def remote(request, gateway, openai_up, anthropic_up):
    """(gateway, the remote double): `pii: redact` with NER, remote then local, the remote on either wire."""
    if importlib.util.find_spec("spacy") is None:
        unavailable("the privacy-ner extra is not installed (scripts/test.sh installs it)")
    openai_up.default = anthropic_up.default = echo_placeholders
    if request.param == "anthropic":
        cfg = privacy_config(openai_up.url, anthropic_up.url, FB, ner={"enabled": True})
        up = anthropic_up
    else:
        cfg = privacy_config(anthropic_up.url, openai_up.url + "/v1", FB, ner={"enabled": True})
        cfg["providers"]["localsrv"].update(kind="anthropic", base_url=anthropic_up.url)
        cfg["providers"]["cloud"].update(kind="openai")
        up = openai_up
    cfg["server"]["default_route"] = "fb"
    return gateway(cfg), up


def _tool(name: str) -> dict[str, Any]:
    return {"name": name, "description": f"Look {name} up in the CRM.",
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}


def _sent(up: Any) -> list[dict[str, Any]]:
    assert up.requests, "the remote model got no request (refused, or served by the local model)"
    return [json.loads(rec.raw) for rec in up.requests]


def _tool_names(body: dict[str, Any]) -> list[str]:
    return [t.get("name") or t["function"]["name"] for t in body.get("tools", [])]


def test_a_tool_named_like_a_person_does_not_exempt_the_users_mentions(remote):
    g, up = remote
    r = ant(g).messages.create(model="fb", max_tokens=50, tools=[_tool("Jordan"), _tool("Paris")],
                               messages=[{"role": "user", "content": USER_TURN}])
    assert r.content
    for body in _sent(up):
        assert sorted(_tool_names(body)) == ["Jordan", "Paris"]  # the tools keep their names
        texts = json.dumps([body["messages"], [t.get("description") or t["function"].get("description")
                                               for t in body["tools"]]])
        assert "Jordan" not in texts and "Paris" not in texts, texts


def test_the_tool_keeps_its_name_in_the_calls_of_the_conversation(remote):
    """A tool call in the history names the tool as the API needs, next to the user's mention of the person:
    the call is sent, the call's name as it is, the person redacted (the leak check allows the tool's name
    where the API needs it, and nowhere else)."""
    g, up = remote
    r = ant(g).messages.create(model="fb", max_tokens=50, tools=[_tool("Jordan")], messages=[
        {"role": "user", "content": "Look up the contract."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Jordan",
                                           "input": {"q": "contract"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "found 1"},
                                     {"type": "text", "text": USER_TURN}]}])
    assert r.content
    raw = json.dumps(_sent(up)[-1])
    assert raw.count("Jordan") == 2, raw  # the tool's definition and the call, not the user's two mentions


def test_the_tools_own_name_in_a_tool_mention_stays(remote):
    """Where the word names the tool (a list of tools, `the … tool`, quoted) it is not a person's."""
    g, up = remote
    r = ant(g).messages.create(model="fb", max_tokens=50, tools=[_tool("Jordan"), _tool("Lookup")],
                               system="Use the Jordan tool for contacts. Do NOT use Lookup, Jordan or `Jordan`.",
                               messages=[{"role": "user", "content": "Find the contract."}])
    assert r.content
    out = _sent(up)[-1]
    system = json.dumps(out.get("system") or out["messages"][0])
    assert system.count("Jordan") == 3, system


def test_the_leak_check_allows_a_tools_name_only_as_many_times_as_the_api_needs_it() -> None:
    import orjson

    from tierwise.privacy.request_vocabulary import values_in_body

    tools = [{"name": "Jordan", "input_schema": {}}]
    values = {"Jordan": "PERSON"}
    assert values_in_body(orjson.dumps({"tools": tools}), values, {"Jordan": 1}) == []
    assert values_in_body(orjson.dumps({"tools": tools * 2}), values, {"Jordan": 1}) == ["Jordan"]
    assert values_in_body(orjson.dumps({"tools": tools}), values) == ["Jordan"]  # no allowance
    forged = orjson.dumps({"tools": tools, "messages": [{"content": '"name":"Jordan"'}]})
    assert b'\\"name\\":\\"Jordan\\"' in forged  # text cannot write the member: its quotes are escaped
    assert values_in_body(forged, values, {"Jordan": 1}) == ["Jordan"]
    assert values_in_body(orjson.dumps({"name": "Jordan's"}), values, {"Jordan": 1}) == ["Jordan"]
