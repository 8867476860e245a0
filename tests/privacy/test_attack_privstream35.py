"""Privacy boundary, what privacy15 and review35f left (session 35, privstream35): values split across a request's
tool-call arguments (OpenAI `tool_calls[].function.arguments`, Anthropic `tool_use.input`), and answers whose
placeholders the remote model placed so that the restored value, sent back in the next turn's history, is one the
detectors do not read (`9<CREDIT_CARD_1>5` -> `94111 1111 1111 11115`). Real HTTP, the official SDKs, recording
doubles, `pii: redact` on a fallback route remote -> local (the `remote` fixture)."""

from __future__ import annotations

import json
import re

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai
from tests.privacy.support import SEEDS, leaked
from tierwise.privacy.request_vocabulary import ValueSpread, values_in_body

EMAIL, CARD, SSN = SEEDS["EMAIL_ADDRESS"], SEEDS["CREDIT_CARD"], SEEDS["US_SSN"]


def _sent(up, since: int = 0) -> bytes:
    return b"\n".join(r.raw for r in up.requests[since:])


def _ask(g, up, openai_up, msgs, stream: bool, **kw) -> str:
    if up is openai_up:
        c = oai(g).chat.completions
        if stream:
            return "".join(x.choices[0].delta.content or "" for x in c.create(model="fb", messages=msgs, stream=True,
                                                                             **kw) if x.choices)
        return c.create(model="fb", messages=msgs, **kw).choices[0].message.content or ""
    if stream:
        with ant(g).messages.stream(model="fb", max_tokens=50, messages=msgs, **kw) as s:
            return "".join(s.text_stream)
    return "".join(b.text for b in ant(g).messages.create(model="fb", max_tokens=50, messages=msgs, **kw).content
                   if b.type == "text")


# ---------------------------------------------------------------- values split across a call's arguments (held)

SPLIT_ARGS = {
    "card-over-two-values": {"first": "4111 1111 ", "last": "1111 1111"},
    "card-over-two-values-no-spaces": {"first": "41111111", "last": "11111111"},
    "card-over-four-values": {"a": "4111", "b": "1111", "c": "1111", "d": "1111"},
    "card-over-nested-values": {"a": ["4111 1111"], "b": {"c": " 1111 1111"}},
    "email-over-two-values": {"user": "jane.doe@", "domain": "example.com"},
    "email-over-a-key-and-its-value": {"jane.doe@": "example.com"},
}


@pytest.mark.parametrize("name", list(SPLIT_ARGS))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_value_split_over_a_tool_call_s_arguments_does_not_leave(remote, openai_up, name):
    g, up = remote
    args = SPLIT_ARGS[name]
    if up is openai_up:
        oai(g).chat.completions.create(model="fb", tools=[{"type": "function", "function": {
            "name": "pay", "parameters": {"type": "object", "properties": {}}}}], messages=[
            {"role": "user", "content": "pay"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
                "name": "pay", "arguments": json.dumps(args)}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"}])
    else:
        ant(g).messages.create(model="fb", max_tokens=50, tools=[{
            "name": "pay", "input_schema": {"type": "object", "properties": {}}}], messages=[
            {"role": "user", "content": "pay"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "pay", "input": args}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "ok"}]}])
    assert up.requests and not leaked(_sent(up), [EMAIL, CARD]), name


@pytest.mark.parametrize("name", ["card-over-two-values", "card-over-four-values", "email-over-two-values"])
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_value_split_over_a_responses_function_call_s_arguments_does_not_leave(remote, name):
    g, up = remote
    oai(g).responses.create(model="fb", tools=[{"type": "function", "name": "pay", "parameters": {
        "type": "object", "properties": {}}}], input=[
        {"role": "user", "content": "pay"},
        {"type": "function_call", "call_id": "c1", "name": "pay", "arguments": json.dumps(SPLIT_ARGS[name])},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"}])
    assert up.requests and not leaked(_sent(up), [EMAIL, CARD]), name


# ---------------------------------------------------------------- a restored value glued to letters or digits

def _glue(rec) -> Reply:
    """A remote model that writes each placeholder it got glued to digits or `_x`: restored, no detector reads it."""
    names = sorted(set(re.findall(r"<([A-Z_]+_\d+)>", rec.raw.decode("utf-8", "replace"))))
    return Reply(text="Noted: " + " ".join(f"9<{n}>5" if "CARD" in n or "SSN" in n else f"<{n}>_x" for n in names))


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_restored_value_glued_to_digits_is_redacted_in_the_next_turn(remote, openai_up, anthropic_up, stream):
    """Turn 1's answer `9<CREDIT_CARD_1>5` reached the client as `94111 1111 1111 11115`; turn 2 resent it in the
    history beside the user's own turn: the card there was redacted, its glued copy was not (every occurrence of a
    detected value was looked for on word boundaries only, by ValueSpread and by the leak check alike)."""
    g, up = remote
    openai_up.default = anthropic_up.default = _glue
    first = [{"role": "user", "content": f"My card is {CARD}, SSN {SSN}, mail {EMAIL}."}]
    answer = _ask(g, up, openai_up, first, stream)
    assert f"9{CARD}5" in answer and f"9{SSN}5" in answer and f"{EMAIL}_x" in answer  # restored for the client
    n = len(up.requests)
    _ask(g, up, openai_up, [*first, {"role": "assistant", "content": answer}, {"role": "user", "content": "and?"}],
         stream)
    assert len(up.requests) > n
    assert not leaked(_sent(up, n), [CARD, SSN, EMAIL]), "a restored value glued to digits went back in clear"


def test_structured_values_are_found_inside_words_and_names_are_not():
    values = {CARD: "CREDIT_CARD", "Ann": "PERSON", SSN: "US_SSN"}
    text = f"Annual fee for 9{CARD}5 and x{SSN}y, Ann."
    got = sorted(text[f.start:f.end] for f in ValueSpread(values).add(text, []))
    assert got == sorted([CARD, SSN, "Ann"])  # `Ann` at its word only, not in `Annual`
    assert values_in_body(json.dumps({"t": f"9{CARD}5"}).encode(), values) == [CARD]
    assert values_in_body(b'{"t":"Annual"}', values) == []
