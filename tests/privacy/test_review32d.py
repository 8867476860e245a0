"""Review of privacy round 12 (session 32, review32d): text inside base64 payloads and ids is redacted in the text it
decodes to and written back as valid base64 (round 12 redacted the base64 characters: a broken file left), ids stay
one id between a tool call and its result, and a value past the 4,096 characters the probe decodes is found.

Real HTTP, the official SDKs, recording upstream doubles."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.gateway.conftest import oai
from tests.privacy.support import (
    NOTE,
    SEEDS,
    attach_document,
    b64,
    call_tool_with_id,
    show_image,
    upload_text_file,
)

EMAIL = SEEDS["EMAIL_ADDRESS"]
CARD = SEEDS["CREDIT_CARD"]
PLACEHOLDER = re.compile(r"<[A-Z_]+_\d+>")


def sent(up) -> dict:
    assert up.requests
    return json.loads(up.requests[-1].raw)


def redacted_note(text: str) -> None:
    """`text` is the note with the address and the card replaced by placeholders, the rest as written."""
    assert EMAIL not in text and CARD not in text, text
    assert len(PLACEHOLDER.findall(text)) == 2, text
    assert text.startswith("Call notes, 3 March.\nCustomer: <") and text.endswith(">.\nFollow up next week.\n"), text


def strict_b64(s: str) -> str:
    return base64.b64decode(s, validate=True).decode("utf-8")


def reads_the_file(rec):
    """A remote model that reads the base64 file it got and repeats the placeholders in it."""
    from tests.doubles import Reply

    runs = re.findall(r"[A-Za-z0-9+/]{40,}={0,2}", rec.raw.decode())
    names = sorted({p for r in runs for p in PLACEHOLDER.findall(strict_b64(r))})
    return Reply(text="The file names " + " and ".join(names) + ".")


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_a_text_file_leaves_as_valid_base64_with_placeholders_and_the_answer_is_restored(remote):
    g, up = remote
    up.default = reads_the_file
    r = upload_text_file(g, b64(NOTE))
    part = sent(up)["messages"][0]["content"][1]
    head, _, payload = part["file"]["file_data"].partition(",")
    assert head == "data:text/plain;base64"
    redacted_note(strict_b64(payload))
    assert EMAIL in (r.choices[0].message.content or "") and CARD in (r.choices[0].message.content or "")  # the placeholder the model echoed, restored


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_an_image_s_base64_that_is_text_keeps_its_media_type_and_stays_valid(remote):
    g, up = remote
    show_image(g, b64(NOTE))
    url = sent(up)["messages"][0]["content"][1]["image_url"]["url"]
    head, _, payload = url.partition(",")
    assert head == "data:image/png;base64"
    redacted_note(strict_b64(payload))


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_text_document_leaves_as_valid_base64_with_placeholders(remote):
    g, up = remote
    up.default = reads_the_file
    r = attach_document(g, b64(NOTE))
    source = sent(up)["messages"][0]["content"][0]["source"]
    assert source["type"] == "base64" and source["media_type"] == "text/plain"
    redacted_note(strict_b64(source["data"]))
    assert EMAIL in r.content[0].text and CARD in r.content[0].text


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_value_past_the_probe_s_4096_characters_is_redacted(remote):
    """The probe decodes a payload's first 4,096 characters to tell text from binary; the whole text is scanned."""
    g, up = remote
    text = "Minutes of the weekly meeting, nothing of note here.\n" * 120 + NOTE  # ~6,400 characters before it
    attach_document(g, b64(text))
    got = strict_b64(sent(up)["messages"][0]["content"][0]["source"]["data"])
    assert EMAIL not in got and CARD not in got and len(PLACEHOLDER.findall(got)) == 2


ID = re.compile(r"^[a-zA-Z0-9_-]+$")  # Anthropic's pattern for tool_use ids


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_an_id_holding_text_stays_one_valid_id_between_the_call_and_its_result_anthropic(remote):
    g, up = remote
    call_tool_with_id(g, f"toolu_{b64(EMAIL).rstrip('=')}")
    body = sent(up)
    use_id = body["messages"][1]["content"][0]["id"]
    result_id = body["messages"][2]["content"][0]["tool_use_id"]
    assert use_id == result_id and ID.fullmatch(use_id), (use_id, result_id)
    assert use_id.startswith("toolu_") and b64(EMAIL).rstrip("=")[:12] not in use_id
    inner = base64.urlsafe_b64decode(use_id[6:] + "=" * (-len(use_id[6:]) % 4)).decode()
    assert PLACEHOLDER.fullmatch(inner), inner


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_an_id_holding_text_stays_one_id_between_the_call_and_its_result_openai(remote):
    g, up = remote
    call_id = f"call_{b64(EMAIL).rstrip('=')}"
    oai(g).chat.completions.create(model="fb", messages=[
        {"role": "user", "content": "look me up"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": "crm", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "found"}],
        tools=[{"type": "function", "function": {"name": "crm", "parameters": {"type": "object"}}}])
    body = sent(up)
    use_id = body["messages"][1]["tool_calls"][0]["id"]
    result_id = body["messages"][2]["tool_call_id"]
    assert use_id == result_id and ID.fullmatch(use_id), (use_id, result_id)
    assert b64(EMAIL).rstrip("=")[:12] not in use_id


# ---------------------------------------------------------------------------- a key hidden as prose

@pytest.mark.parametrize("key", ["ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZaBcDeFgHiJkL", "AKIAIOSFODNN7EXAMPLE",
                                 "password: CorrectHorseBatteryStaple"])
def test_a_key_in_the_base64_of_a_sentence_is_still_a_secret(det, key):
    """Round 12 passed a token of base64 whose text holds four spaces (prose); a key written in a sentence was then
    no SECRET (the base64 view reads only texts with an `@` or four digits). Base 61c85871 found all three."""
    text = f"blob {b64(f'here is the thing you asked for, keep it safe: {key}')} end"
    assert "SECRET" in {f.entity for f in det.scan(text)}
    plain = "Meeting notes, 3 March.\nAttendees: the team. Budget approved; next review in April.\n" * 3
    assert [f for f in det.scan(f"blob {b64(plain)} end") if f.entity == "SECRET"] == []


# ---------------------------------------------------------------------------- left items of round 12

@pytest.mark.parametrize("text", ["tel:+46701234567x", "reach me on +14155552671abc", "id:+442071838750_home"])
def test_an_international_phone_glued_to_a_word_after_it_is_found(det, text):
    """Round 11 read a number glued to a word before it (`call_+14155552671.wav`); one glued after it was missed."""
    assert "PHONE_NUMBER" in {f.entity for f in det.scan(text)}
