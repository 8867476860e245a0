"""A document, a file or an audio clip sent as base64 is not text: scanned, its payload is one
long high-entropy token, which the secret detector takes for a key, so a `secrets: block`
policy refused every PDF (400 "holds data of class 'secrets'"), and a `secrets: redact` one
would have cut a placeholder into the file. Real HTTP, official SDKs, a recording remote double:
the payload leaves whole, the text next to it is still redacted, a value in a document's title
or a text document still counts. (Round 13: a PDF's text is read, so the payload is a real PDF; random bytes after
`%PDF-` cannot be read, and fail closed: tests/privacy/test_attack_privacy13.py.)"""

from __future__ import annotations

import base64
import json
import random

import anthropic
import pytest

from tests.gateway.conftest import ant, oai
from tests.privacy.pdfs import make_pdf
from tests.privacy.support import echo_placeholders, privacy_config

EMAIL = "jane.doe@example.com"
PAYLOAD = base64.b64encode(make_pdf(["Quarterly figures: revenue up 4 percent."] * 40
                                     + [random.Random(5).randbytes(600).hex()])).decode()
# A WAV clip's bytes (round 14: a payload that is no image, audio, PDF or text fails closed; this test sent the PDF
# as the audio clip's data)
WAV = base64.b64encode(b"RIFF\x24\x10\x00\x00WAVEfmt " + random.Random(6).randbytes(4096)).decode()


@pytest.fixture(params=["block", "redact"])
def g(request, gateway, openai_up, anthropic_up):
    anthropic_up.default = echo_placeholders
    cfg = privacy_config(openai_up.url, anthropic_up.url,
                         {"fb": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}},
                         policy={"pii": "redact", "secrets": request.param})
    cfg["server"]["default_route"] = "fb"
    return gateway(cfg)


def test_an_anthropic_pdf_leaves_whole_and_the_text_beside_it_is_redacted(g, anthropic_up):
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PAYLOAD}},
        {"type": "text", "text": f"Summarize it for {EMAIL}."}]}])
    sent = json.loads(anthropic_up.requests[-1].raw)
    assert sent["messages"][0]["content"][0]["source"]["data"] == PAYLOAD
    assert EMAIL not in anthropic_up.requests[-1].raw.decode()


def test_openai_file_and_audio_parts_leave_whole(gateway, openai_up, anthropic_up):
    # an OpenAI-format remote, so the parts are forwarded (an Anthropic upstream drops them)
    cfg = privacy_config(anthropic_up.url, openai_up.url,
                         {"fb": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}},
                         policy={"pii": "redact", "secrets": "block"})
    cfg["providers"]["localsrv"].update(kind="anthropic", base_url=anthropic_up.url)
    cfg["providers"]["cloud"].update(kind="openai", base_url=openai_up.url + "/v1")
    cfg["server"]["default_route"] = "fb"
    openai_up.default = echo_placeholders
    g2 = gateway(cfg)
    oai(g2).chat.completions.create(model="fb", messages=[{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64," + PAYLOAD}},
        {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}},
        {"type": "text", "text": f"Transcribe for {EMAIL}."}]}])
    raw = openai_up.requests[-1].raw.decode()
    parts = json.loads(raw)["messages"][0]["content"]
    assert parts[0]["file"]["file_data"].endswith(PAYLOAD) and parts[1]["input_audio"]["data"] == WAV
    assert EMAIL not in raw


def test_a_value_in_a_document_title_or_text_source_still_counts(g, anthropic_up):
    for doc in ({"type": "document", "title": f"Notes for {EMAIL}",
                 "source": {"type": "base64", "media_type": "application/pdf", "data": PAYLOAD}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": f"mail {EMAIL}"}}):
        ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
            doc, {"type": "text", "text": "Summarize."}]}])
        assert EMAIL not in anthropic_up.requests[-1].raw.decode()


def test_a_key_beside_a_pdf_is_still_blocked_or_redacted(g, anthropic_up):
    key = "sk-ant-api03-Zx8Qw2Lp9Rt4Vb7Nm1Kc5Hj3Gf6Ds0Ae2Wq8Ty4Ui7Op"
    n = len(anthropic_up.requests)
    try:
        ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PAYLOAD}},
            {"type": "text", "text": f"my key is {key}"}]}])
    except anthropic.BadRequestError as e:
        assert "secrets" in e.message  # secrets: block
    assert all(key not in r.raw.decode() for r in anthropic_up.requests[n:])  # secrets: redact


@pytest.mark.parametrize("form", ["mime-lines", "percent-encoded", "url-safe"])
def test_base64_in_its_other_legal_forms_is_still_a_payload(g, anthropic_up, form):
    """A payload with characters outside base64's alphabet is text (tests/privacy/test_attack_round2.py);
    base64 wrapped at 76 columns, with `+/=` percent-encoded (legal in a data: URL, RFC 2397; the same
    check serves both) and the URL-safe alphabet are still payloads, or `secrets: block` would refuse
    those files again."""
    data = {"mime-lines": "\r\n".join(PAYLOAD[i:i + 76] for i in range(0, len(PAYLOAD), 76)),
            "percent-encoded": PAYLOAD.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D"),
            "url-safe": base64.urlsafe_b64encode(base64.b64decode(PAYLOAD)).decode()}[form]
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}},
        {"type": "text", "text": f"Summarize it for {EMAIL}."}]}])
    sent = json.loads(anthropic_up.requests[-1].raw)
    assert sent["messages"][0]["content"][0]["source"]["data"] == data
