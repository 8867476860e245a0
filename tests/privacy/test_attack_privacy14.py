"""Privacy round 14 (session 34, privacy14): data: URLs the scan read more strictly than readers do, payloads whose
bytes the scan could not read (archives, legacy encodings, short CJK notes) skipped as "binary", and the refusal a
client gets when its request holds what the scan cannot read.

Real HTTP, the official SDKs (raw HTTP for the error bodies), recording upstream doubles."""

from __future__ import annotations

import base64
import gzip
import io
import json
import random
import zipfile

import httpx
import pytest

from tests.gateway.conftest import ant, oai
from tests.privacy.file_parts import b64, send, sent
from tests.privacy.pdfs import make_pdf
from tests.privacy.support import SEEDS, echo_placeholders, privacy_config

EMAIL, CARD = SEEDS["EMAIL_ADDRESS"], SEEDS["CREDIT_CARD"]
PDF = make_pdf([f"Customer {EMAIL} card {CARD}"])


# ---------------------------------------------------------------------------- data: URLs as readers read them

URLS = {
    "no-media-type": "data:;base64," + b64(PDF),
    "quoted-parameter": 'data:application/pdf;name="a b.pdf";base64,' + b64(PDF),
    "percent-encoded-parameter": "data:application/pdf;name=a%20b.pdf;base64," + b64(PDF),
    "space-before-comma": "data:application/pdf;base64 ," + b64(PDF),
    "fragment-after-payload": "data:application/pdf;base64," + b64(PDF) + "#page=1",
    "spaces-in-payload": "data:application/pdf;base64," + " ".join(b64(PDF)[i:i + 76]
                                                                  for i in range(0, len(b64(PDF)), 76)),
    "percent-encoded-bytes": "data:application/pdf," + "".join(f"%{c:02X}" for c in PDF),
}


@pytest.mark.parametrize("form", list(URLS))
@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_a_pdf_in_a_data_url_of_any_form_a_reader_takes_is_read(remote, form):
    """Each form was no payload to the scan's pattern: the URL was scanned as text, the PDF inside it unread, and the
    PDF reached the remote model with the address and the card in it (`pii: redact`). Now it is read and replaced by
    its redacted text."""
    g, up = remote
    oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": [
        {"type": "file", "file": {"filename": "notes.pdf", "file_data": URLS[form]}},
        {"type": "text", "text": "Summarise."}]}])
    body = sent(up)
    assert up.requests and b64(PDF)[:40] not in body and "%25PDF" not in body and "%PDF" not in body
    assert "notes.pdf: the text of a PDF" in body and EMAIL not in body


@pytest.mark.parametrize("form", ["no-media-type", "quoted-parameter", "fragment-after-payload"])
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_pdf_in_an_anthropic_url_source_is_read(remote, form):
    g, up = remote
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "url", "url": URLS[form]}},
        {"type": "text", "text": "Summarise."}]}])
    assert up.requests and b64(PDF)[:40] not in sent(up) and EMAIL not in sent(up)


# ---------------------------------------------------------------------------- bytes the scan cannot read

def _zip(name: str, data: bytes) -> bytes:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, data)
    return bio.getvalue()


NOTE = f"Customer {EMAIL} card {CARD}\n".encode()
OPAQUE = {
    "gzip-of-a-pdf": ("application/gzip", lambda: gzip.compress(PDF)),
    "gzip-of-a-text": ("application/gzip", lambda: gzip.compress(NOTE)),
    "zip-of-a-text": ("application/zip", lambda: _zip("a.txt", NOTE)),
    "docx-like": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                  lambda: _zip("word/document.xml", b"<w:t>" + NOTE + b"</w:t>")),
    "koi8-r-undeclared": ("text/plain", lambda: f"Клиент: Иван Петров, почта {EMAIL}, карта {CARD}.".encode("koi8_r")),
    "shift-jis-under-64-bytes": ("text/plain", lambda: f"メール {EMAIL}".encode("shift_jis")),
    "shift-jis-card-under-64-bytes": ("text/plain", lambda: f"カード {CARD}。".encode("shift_jis")),
}


@pytest.mark.parametrize("name", list(OPAQUE))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_payload_the_scan_cannot_read_does_not_reach_the_remote_model(remote, anthropic_up, openai_up, name):
    """These bytes were "binary" (not text in an encoding the scan reads, not a PDF) and skipped: each reached the
    remote model with the address and the card inside. Now they fail closed: the local target answers."""
    g, up = remote
    media, make = OPAQUE[name]
    data = make()
    send(g, up, openai_up, data, media)
    assert b64(data)[:24] not in sent(up), name
    local = anthropic_up if up is openai_up else openai_up
    if name in ARCHIVES_READ:  # privacy15: archives are read (bounded): their text goes redacted in their place
        assert EMAIL not in sent(up) and "withheld by the privacy guard" in sent(up), name
    else:
        assert local.requests


ARCHIVES_READ = frozenset({"gzip-of-a-text", "zip-of-a-text", "docx-like"})


PNG = b"\x89PNG\r\n\x1a\n" + random.Random(14).randbytes(3000)
WAV = b"RIFF\x24\x10\x00\x00WAVEfmt " + random.Random(15).randbytes(3000)


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_images_and_audio_still_leave_whole(remote):
    """Formats that carry pixels or sound are not read (no OCR, no speech) and leave as they came."""
    g, up = remote
    oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64(PNG)}},
        {"type": "input_audio", "input_audio": {"data": b64(WAV), "format": "wav"}},
        {"type": "text", "text": "Describe."}]}])
    assert b64(PNG) in sent(up) and b64(WAV) in sent(up)


# ---------------------------------------------------------------------------- charsets: declared, and EBCDIC

@pytest.mark.parametrize("text,charset", [(f"メール {EMAIL}", "shift_jis"),
                                          (f"Клиент: почта {EMAIL}, карта {CARD}.", "koi8-r"),
                                          (f"Customer {EMAIL}, card {CARD}.", "IBM037")])
@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_a_text_in_its_declared_charset_is_redacted_and_stays_in_it(remote, text, charset):
    import re

    g, up = remote
    raw = text.encode(charset)
    oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.txt", "file_data": f"data:text/plain;charset={charset};base64,{b64(raw)}"}},
        {"type": "text", "text": "Summarise."}]}])
    url = json.loads(up.requests[-1].raw)["messages"][0]["content"][0]["file"]["file_data"]
    head, _, data = url.partition(",")
    assert head == f"data:text/plain;charset={charset};base64"
    got = base64.b64decode(data).decode(charset)
    assert EMAIL not in got and CARD not in got
    assert re.sub(r"<[A-Z_]+_\d+>", "V", got) == text.replace(EMAIL, "V").replace(CARD, "V")


@pytest.mark.parametrize("codepage", ["cp037", "cp500", "cp1140"])
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_an_ebcdic_document_is_redacted_and_stays_ebcdic(remote, codepage):
    """EBCDIC was binary (GB18030 even read cp500 prose as CJK "text" and found nothing): the document left with its
    address and card."""
    g, up = remote
    note = f"Customer record: {EMAIL}, card {CARD}, call us back next week.\n"
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "text/plain", "data": b64(note.encode(codepage))}},
        {"type": "text", "text": "Summarise."}]}])
    source = json.loads(up.requests[-1].raw)["messages"][0]["content"][0]["source"]
    got = base64.b64decode(source["data"]).decode(codepage)
    assert EMAIL not in got and CARD not in got and got.startswith("Customer record: <")


def test_random_bytes_are_not_read_as_ebcdic():
    from tierwise.privacy.charsets import decode, ebcdic

    rnd = random.Random(34)
    assert sum(ebcdic(rnd.randbytes(n)) for n in (24, 48, 3072) for _ in range(20_000)) == 0
    assert sum(decode(rnd.randbytes(n)) is not None for n in (24, 64) for _ in range(20_000)) == 0


# ---------------------------------------------------------------------------- the refusal says why

@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("what", ["gzip-past-the-bound", "opaque-file"])
def test_a_remote_only_route_refuses_with_a_reason_in_the_client_s_schema(gateway, openai_up, anthropic_up, what,
                                                                         stream):
    """A legitimate gzip log (compressing past 8x + 4 KB) or an archive on a route with only a remote target: a 400 in
    the API's error schema that says what in the request could not be scanned (it said "the privacy detector
    failed"), never a 500, and nothing reached the remote model."""
    anthropic_up.default = echo_placeholders
    cfg = privacy_config(openai_up.url, anthropic_up.url, {"r": {"policy": "fallback", "targets": ["frontier"],
                                                                 "retries": 0}}, policy={"pii": "redact"})
    cfg["privacy"]["classes"] = {"pii": {}}
    cfg["server"]["default_route"] = "r"
    g = gateway(cfg)
    blob = b64(gzip.compress(b"2026-12-07 INFO request served ok\n" * 20_000))
    if what == "gzip-past-the-bound":
        ant_content = oai_content = [{"type": "text", "text": f"Here is my log, gzipped: {blob}"}]
        words = "gzip or zlib data that inflates past"
    else:
        ant_content = [{"type": "document", "source": {"type": "base64", "media_type": "application/gzip",
                                                        "data": blob}}, {"type": "text", "text": "What is in it?"}]
        oai_content = [{"type": "file", "file": {"filename": "a.gz", "file_data": "data:application/gzip;base64," + blob}}]
        words = "a file whose bytes the privacy scan cannot read"
    for path, body in (("/v1/messages", {"model": "r", "max_tokens": 20, "stream": stream,
                                         "messages": [{"role": "user", "content": ant_content}]}),
                       ("/v1/chat/completions", {"model": "r", "stream": stream,
                                                 "messages": [{"role": "user", "content": oai_content}]})):
        r = httpx.post(g.url + path, json=body, headers={"authorization": "Bearer k", "x-api-key": "k"}, timeout=60)
        assert r.status_code == 400, (path, r.status_code, r.text[:300])  # 403 before session 36 (newuser36)
        err = r.json()
        message = err["error"]["message"]
        assert (err["type"] == "error") if path == "/v1/messages" else ("type" not in err)
        assert words in message and "fails closed" in message, message
    assert not anthropic_up.requests


@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_an_archive_as_a_responses_api_image_does_not_reach_the_remote_model(remote):
    """The Responses API's `input_image` with a gzip of a text as its data: URL reached the remote model (both
    upstream formats); now the request fails closed and the local target answers."""
    g, up = remote
    blob = b64(gzip.compress(NOTE))
    r = httpx.post(g.url + "/v1/responses", json={"model": "fb", "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "data:image/png;base64," + blob},
        {"type": "input_text", "text": "What is in it?"}]}]}, headers={"authorization": "Bearer k"}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    assert blob[:24] not in sent(up)
