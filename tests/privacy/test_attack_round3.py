"""Privacy attack round 3 (session 22): the mechanisms the new-user round added the same day.

Real HTTP, the official SDKs, upstream doubles that record every body. The attacker of the first group is a
third party whose text is in the request (an MCP server's tool definitions): it wants the user's protected
values to reach the remote model in clear."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest

from tests.gateway.conftest import ant, oai
from tests.harness import unavailable
from tests.privacy.support import echo_placeholders, privacy_config

FB = {"fb": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}}
EMAIL = "jane.doe@example.com"
USER_TURN = ("Please write to Alice Johnson about the contract; Alice Johnson signs for us. "
             "Ask Alice whether Berlin works for the meeting.")


@pytest.fixture
def ner_gateway(gateway, openai_up, anthropic_up):
    """A `pii: redact` gateway with NER (the name detectors), remote (Anthropic) then local (OpenAI)."""
    if importlib.util.find_spec("spacy") is None:
        unavailable("the privacy-ner extra is not installed (scripts/test.sh installs it)")
    openai_up.default = anthropic_up.default = echo_placeholders
    cfg = privacy_config(openai_up.url, anthropic_up.url, FB, ner={"enabled": True})
    cfg["server"]["default_route"] = "fb"
    return gateway(cfg)


def _tool(schema: dict[str, Any], name: str = "crm_lookup") -> dict[str, Any]:
    return {"name": name, "description": "Look a contact up in the CRM.", "input_schema": schema}


# Schemas a malicious MCP server can declare (each is valid JSON Schema).
SCHEMAS: dict[str, dict[str, Any]] = {
    "property-key": {"type": "object", "properties": {"Alice Johnson": {"type": "string"}}},
    "required-given-names": {"type": "object", "properties": {"q": {"type": "string"}},
                             "required": ["Alice", "Bob", "Carol", "Johnson", "Berlin"]},
    "nested-defs": {"type": "object", "$defs": {"contact": {"properties": {"Alice Johnson": {"type": "string"},
                                                                           "Alice": {"type": "string"}}}}},
}


def _user_texts(raw: bytes) -> str:
    """The text of the messages of a recorded Anthropic body (the user's data; the tool schema is the attacker's)."""
    return json.dumps(json.loads(raw)["messages"])


@pytest.mark.parametrize("case", list(SCHEMAS))
def test_a_tools_schema_names_do_not_exempt_the_users_mentions_of_people(ner_gateway, anthropic_up, case):
    """A schema key or `required` entry equal to a person's name exempted every finding of that name in the
    request (in the user's messages too), and the leak check, which looks for detected values only, did not
    look for it: the user's `Alice Johnson` reached the remote model in clear."""
    r = ant(ner_gateway).messages.create(model="fb", max_tokens=50, tools=[_tool(SCHEMAS[case])],
                                         messages=[{"role": "user", "content": USER_TURN}])
    assert r.content  # answered (by the remote with placeholders, or by the local model)
    for rec in anthropic_up.requests:
        sent = _user_texts(rec.raw)
        assert "Alice" not in sent and "Berlin" not in sent, sent


def test_a_schema_key_equal_to_an_email_address_exempts_nothing(ner_gateway, anthropic_up):
    """Only name-like findings are ever dropped: a structured value is a value wherever it is declared."""
    schema = {"type": "object", "properties": {EMAIL: {"type": "string"}}, "required": [EMAIL]}
    r = ant(ner_gateway).messages.create(model="fb", max_tokens=50, tools=[_tool(schema)],
                                         messages=[{"role": "user", "content": f"Mail {EMAIL} today."}])
    assert r.content
    assert all(EMAIL.encode() not in rec.raw for rec in anthropic_up.requests)


def test_a_tools_own_name_is_still_not_redacted(ner_gateway, anthropic_up):
    """What the exemption is for (Claude Code's `Edit`): a tool's name, mentioned in the system prompt and a
    user turn, stays as written and the call reaches the remote model. The turn lists Claude Code's tools, and
    Claude Code declares them all (since session 23 a name-shaped tool name is exempt in prose where the text
    uses it as the tool's: listed with another tool, next to `tool`, quoted; see test_tool_name_exemption.py)."""
    schema = {"type": "object", "properties": {"path": {"type": "string"}}}
    r = ant(ner_gateway).messages.create(
        model="fb", max_tokens=50, tools=[_tool(schema, name=n) for n in ("Read", "Bash", "Grep", "Glob", "Edit",
                                                                          "Write")],
        system="Use the Edit tool to change files. Edit never creates files.",
        messages=[{"role": "user", "content": "Do NOT use Read, Bash, Grep, Glob, Edit, or Write."}])
    assert r.content
    assert anthropic_up.requests, "the remote model got no request"
    out = json.loads(anthropic_up.requests[-1].raw)
    assert out["tools"][4]["name"] == "Edit" and json.dumps(out["system"]).count("Edit") == 2
    assert "Edit" in json.dumps(out["messages"])


# ---------------------------------------------------------------------------- (b) the findings cache


@pytest.fixture
def redact_gateway(gateway, openai_up, anthropic_up):
    openai_up.default = anthropic_up.default = echo_placeholders
    cfg = privacy_config(openai_up.url, anthropic_up.url, FB)
    cfg["server"]["default_route"] = "fb"
    return gateway(cfg)


def _held(cache: Any) -> int:
    return sum(len(v) for part in cache._parts.values() for v in part.entries.values())


def test_a_client_cannot_fill_the_findings_cache_with_texts_of_many_values(redact_gateway, anthropic_up):
    """The cache was bounded by entries (2,048) only, and an entry holds one text's findings: a text of
    4,000,000 characters holds ~570,000 (~75 MB), so a client sending distinct texts dense with values
    pinned gigabytes. A text with thousands of findings is scanned again instead of kept."""
    client = oai(redact_gateway)
    for i in range(3):  # each text distinct (a new entry), 5,000 e-mail addresses
        text = f"batch {i}: " + f"write to {EMAIL} " * 5000
        r = client.chat.completions.create(model="fb", messages=[{"role": "user", "content": text}])
        assert r.choices[0].message.content
    assert anthropic_up.requests and all(EMAIL.encode() not in rec.raw for rec in anthropic_up.requests)
    assert _held(redact_gateway.gateway.privacy.findings_cache) == 0


def test_the_findings_cache_is_bounded_by_the_findings_it_holds() -> None:
    from tierwise.privacy.findings_cache import FindingsCache

    cache = FindingsCache(max_entries=100, max_findings=10, max_entry_findings=4)
    for i in range(5):
        cache.put(FindingsCache.key(b"salt", f"text {i}"), [object()] * 3)
    assert _held(cache) <= 10 and cache.findings_held == _held(cache)
    assert cache.get(FindingsCache.key(b"salt", "text 4")) is not None  # the newest stay
    assert cache.get(FindingsCache.key(b"salt", "text 0")) is None  # the oldest went first
    cache.put(FindingsCache.key(b"salt", "big"), [object()] * 5)
    assert cache.get(FindingsCache.key(b"salt", "big")) is None
    cache.put(FindingsCache.key(b"salt", "text 4"), [object()])  # replacing an entry counts it once
    assert cache.findings_held == _held(cache)


# ---------------------------------------------------------------------------- (c) every occurrence redacted


def test_a_value_repeated_past_the_spread_budget_is_refused_not_sent(ner_gateway, anthropic_up, openai_up,
                                                                     monkeypatch):
    """Redacting every occurrence of a detected value had no bound: a two-letter name repeated over the
    4,000,000 characters a request may carry is 1.3 million occurrences, ~3 s of finding and redacting on
    the event loop (every other request waits). The occurrences past the budget are left as written, and
    the leak check refuses the remote call: the local model serves it. (The budget is lowered here so the
    request stays small; the default is 100,000.)"""
    from tierwise.privacy import request_vocabulary

    monkeypatch.setattr(request_vocabulary, "MAX_SPREAD_MATCHES", 50, raising=False)
    rows = [{"type": "text", "text": f"Alice {i}"} for i in range(60)]  # no detector reads `Alice 7` as a name
    r = ant(ner_gateway).messages.create(model="fb", max_tokens=50, messages=[
        {"role": "user", "content": USER_TURN}, {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": rows}])
    assert r.content  # served by the local model
    assert openai_up.requests, "the local model was not asked"
    assert all(b"Alice" not in rec.raw for rec in anthropic_up.requests)
    assert not anthropic_up.requests  # refused before it left: nothing reached the remote


@pytest.mark.parametrize("window", [1 << 16, 1, 3])
def test_the_leak_checks_one_pass_finds_what_a_search_per_value_finds(window, monkeypatch) -> None:
    """`values_in_body` replaced a `bytes.find` loop per value (values × bytes: 1.3 s for 8,000 values in a
    0.5 MB body); the same word-boundary rule, on random values and bodies with escapes, edges and overlaps,
    and the same answer whatever the size of the windows the body is read in (session 23)."""
    import random

    import orjson

    from tierwise.privacy import request_vocabulary
    from tierwise.privacy.request_vocabulary import values_in_body

    monkeypatch.setattr(request_vocabulary, "WINDOW_CHARS", window)

    def one_value(body: bytes, value: str) -> bool:  # the former search, as reference
        needle = orjson.dumps(value)[1:-1]
        start = 0
        while needle:
            i = body.find(needle, start)
            if i < 0:
                return False
            j = i + len(needle)
            if not (body[i - 1:i].isalnum() and needle[:1].isalnum()) and not (
                    body[j:j + 1].isalnum() and needle[-1:].isalnum()):
                return True
            start = i + 1
        return False

    rnd = random.Random(7)
    alphabet = 'aAb1 .@-é"\\\n<>_'
    for _ in range(5000):
        values = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 4))) for _ in range(rnd.randint(0, 5))]
        body = orjson.dumps({"t": "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 30)))})
        assert set(values_in_body(body, values)) == {v for v in values if one_value(body, v)}, (values, body)
