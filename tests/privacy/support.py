"""Shared pieces of the privacy boundary tests: seeded identifiers, conversations in both APIs,
a remote double that echoes the placeholders it received, and leak checks on recorded bodies (the strings each
request to the remote double held: none of the values the attack rounds send), and one exchange each of text
inside base64 payloads and ids through the official SDKs."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from typing import Any

from tests.doubles import Reply, ToolCall
from tests.harness import two_tier_config

# Structured identifiers the detectors validate (Luhn, mod 97, SSN rules, phonenumbers, ...).
SEEDS = {
    "CREDIT_CARD": "4111 1111 1111 1111",
    "IBAN_CODE": "DE89 3704 0044 0532 0130 00",
    "US_SSN": "536-22-8147",
    "EMAIL_ADDRESS": "jane.doe@example.com",
    "PHONE_NUMBER": "+46 70 123 45 67",
    "IP_ADDRESS": "203.0.113.45",
}
SECRET = "sk-ant-api03-Zx8Qw2Lp9Rt4Vb7Nm1Kc5Hj3Gf6Ds0Ae2Wq8Ty4Ui7Op"


def leak_forms(value: str) -> list[str]:
    """The value as written, and as letters and digits only (a reformatted copy is still a leak)."""
    compact = "".join(c for c in value if c.isalnum())
    return [value, compact] if compact != value and len(compact) >= 8 else [value]


def leaked(raw: bytes, values: list[str] | None = None) -> list[str]:
    """Seeded values (in any form) present in a recorded upstream body."""
    text = raw.decode("utf-8", "replace")
    squeezed = re.sub(r"[^0-9A-Za-z@.]", "", text)
    out = []
    for v in values if values is not None else list(SEEDS.values()):
        forms = leak_forms(v)
        if any(f in text for f in forms) or (len(forms) > 1 and forms[1] in squeezed):
            out.append(v)
    return out


PLACEHOLDER = re.compile(r"<([A-Z_]+_\d+)>")


def echo_placeholders(rec: Any) -> Reply:
    """A remote model that repeats every placeholder it was sent (one written `< X_1 >`, which the
    double streams as separate pieces: the restorer must join them across chunks)."""
    names = sorted(set(PLACEHOLDER.findall(rec.raw.decode("utf-8", "replace"))))
    words = [f"<{n}>" for n in names]
    if words:
        words[0] = f"< {names[0]} >"
    return Reply(text="Confirmed: " + " ; ".join(words) + " . Done.")


def remote_brain(rec: Any) -> Reply:
    """The remote double's answer by role: reviewers reject, judges grade poor, the rest echo."""
    text = rec.raw.decode("utf-8", "replace")
    if "You are a strict reviewer" in text:
        return Reply(text="NO")
    if "You are grading an AI assistant" in text:
        return Reply(text="Not right.\nVERDICT: poor")
    return echo_placeholders(rec)


# ---------------------------------------------------------------------------- the conversation

SYSTEM = f"You are the billing assistant. The customer on file is {SEEDS['EMAIL_ADDRESS']}."
FIRST = (f"My card is {SEEDS['CREDIT_CARD']} and my IBAN is {SEEDS['IBAN_CODE']}. "
         "Please look up my account.")
TOOL_ARGS = {"email": SEEDS["EMAIL_ADDRESS"], "ssn": SEEDS["US_SSN"]}
TOOL_RESULT = f"Account found. Phone {SEEDS['PHONE_NUMBER']}, last login from {SEEDS['IP_ADDRESS']}."
LAST = "Thanks. Please confirm my contact details and card, and compute 6 * 7 for me."
TOOL_DESC = "Look up a customer account by email or US SSN."


def openai_messages() -> list[dict[str, Any]]:
    import json

    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": FIRST},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "lookup_account", "arguments": json.dumps(TOOL_ARGS)}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": TOOL_RESULT},
        {"role": "user", "content": LAST},
    ]


OPENAI_TOOLS = [{"type": "function", "function": {
    "name": "lookup_account", "description": TOOL_DESC,
    "parameters": {"type": "object", "properties": {"email": {"type": "string"}, "ssn": {"type": "string"}}}}}]


def anthropic_messages() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": FIRST},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "lookup_account", "input": TOOL_ARGS}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": TOOL_RESULT},
            {"type": "text", "text": LAST}]},
    ]


ANTHROPIC_TOOLS = [{"name": "lookup_account", "description": TOOL_DESC,
                    "input_schema": {"type": "object",
                                     "properties": {"email": {"type": "string"}, "ssn": {"type": "string"}}}}]

# What the local model answers: it saw everything, so its drafts hold raw values (a cascade's
# `with_draft` escalation, a judge and a draft check then carry them toward the remote model).
LOCAL_DRAFT = (f"Your card {SEEDS['CREDIT_CARD']} is linked to {SEEDS['EMAIL_ADDRESS']} and phone "
               f"{SEEDS['PHONE_NUMBER']}. I think the answer is 41.")


def local_reply(rec: Any) -> Reply:
    return Reply(text=LOCAL_DRAFT)


def privacy_config(up_local: str, up_remote: str, routes: dict[str, Any], policy: dict[str, Any] | None = None,
                   route_policy: dict[str, Any] | None = None, **privacy: Any) -> dict[str, Any]:
    cfg = two_tier_config(up_local, up_remote, routes=routes)
    cfg["privacy"] = {"ner": {"enabled": False}, "classes": {"pii": {}, "secrets": {}},
                      "policy": policy if policy is not None else {"pii": "redact", "secrets": "block"},
                      **({"routes": route_policy} if route_policy else {}), **privacy}
    return cfg


__all__ = ["ToolCall"]


def found(det: Any, text: str) -> list[tuple[str, str]]:
    """(entity, the text it covers) for every finding of `det` in `text`."""
    return [(f.entity, text[f.start:f.end]) for f in det.scan(text)]


def pii_only_remote(api: str, gateway: Any, openai_up: Any, anthropic_up: Any) -> tuple[Any, Any]:
    """(gateway, the remote double) under `pii: redact`, the only class configured, on a fallback route remote ->
    local whose remote speaks `api` ("openai" or "anthropic"); both doubles echo what reached them."""
    openai_up.default = anthropic_up.default = echo_placeholders
    fb = {"fb": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}}
    policy = {"pii": "redact"}
    if api == "openai":
        cfg = privacy_config(anthropic_up.url, openai_up.url, fb, policy=policy)
        cfg["providers"]["localsrv"].update(kind="anthropic", base_url=anthropic_up.url)
        cfg["providers"]["cloud"].update(kind="openai", base_url=openai_up.url + "/v1")
        up = openai_up
    else:
        cfg = privacy_config(openai_up.url, anthropic_up.url, fb, policy=policy)
        up = anthropic_up
    cfg["privacy"]["classes"] = {"pii": {}}
    cfg["server"]["default_route"] = "fb"
    return gateway(cfg), up


def ask_remote(g: Any, up: Any, text: str) -> None:
    """One user turn on route `fb` through the official SDK of the API the remote double speaks; an answer came."""
    from tests.gateway.conftest import ant, oai

    if "anthropic" in type(up).__name__.lower():
        assert ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": text}]).content
    else:
        assert oai(g).chat.completions.create(model="fb", messages=[
            {"role": "user", "content": text}]).choices[0].message.content


def ask_remote_not_leaking(g: Any, up: Any, text: str, value: str) -> None:
    """`text` asked as in `ask_remote`: the remote double got a request and `value` (in any form) in none of them."""
    ask_remote(g, up, text)
    assert up.requests and not [r for r in up.requests if leaked(r.raw, [value])], text


def strings(x: object) -> list[str]:
    """Every string in a decoded JSON body, values only (keys are the API's), depth first."""
    if isinstance(x, str):
        return [x]
    if isinstance(x, dict):
        return [s for v in x.values() for s in strings(v)]
    if isinstance(x, list):
        return [s for v in x for s in strings(v)]
    return []


def sent_texts(up: Any) -> list[str]:
    """The strings of each request the remote double got, one text a request (there was one at least)."""
    assert up.requests
    return ["\n".join(strings(json.loads(rec.raw))) for rec in up.requests]


def assert_none_sent(up: Any, parts: Sequence[str]) -> None:
    """No request the remote double got holds any of `parts` in its strings."""
    for sent in sent_texts(up):
        assert not [p for p in parts if p in sent], sent


# ---------------------------------------------------------------------------- text inside base64 payloads and ids

NOTE = (f"Call notes, 3 March.\nCustomer: {SEEDS['EMAIL_ADDRESS']}, card {SEEDS['CREDIT_CARD']}.\n"
        "Follow up next week.\n")


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


# One exchange each through the official SDK on route `fb`, a base64 payload (or an id) as a client writes it.
def upload_text_file(g: Any, payload: str) -> Any:
    """An OpenAI `file` part: a `.txt` upload whose data URL carries `payload`."""
    from tests.gateway.conftest import oai

    return oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": [
        {"type": "text", "text": "Summarise the attached notes."},
        {"type": "file", "file": {"filename": "notes.txt", "file_data": f"data:text/plain;base64,{payload}"}}]}])


def show_image(g: Any, payload: str) -> Any:
    """An OpenAI image part whose `data:image/png` URL carries `payload`."""
    from tests.gateway.conftest import oai

    return oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What does this say?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{payload}"}}]}])


def attach_document(g: Any, payload: str) -> Any:
    """An Anthropic `text/plain` document whose base64 source is `payload`."""
    from tests.gateway.conftest import ant

    return ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "text/plain", "data": payload}},
        {"type": "text", "text": "Summarise the document."}]}])


def call_tool_with_id(g: Any, call_id: str) -> Any:
    """An Anthropic history in which tool call `call_id` and its result were written by the client."""
    from tests.gateway.conftest import ant

    return ant(g).messages.create(model="fb", max_tokens=50, messages=[
        {"role": "user", "content": "look me up"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": call_id, "name": "crm", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "found"}]}],
        tools=[{"name": "crm", "description": "customer lookup", "input_schema": {"type": "object"}}])
