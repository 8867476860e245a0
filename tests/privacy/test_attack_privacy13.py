"""Privacy attack round 13 (session 33, privacy13): PDFs sent as base64 (an Anthropic `document`, an OpenAI `file`
part) are read and their text scanned; one with a finding leaves as its redacted text, one that cannot be read fails
closed; text payloads in Latin-1, cp1252 and UTF-16 are read as UTF-8 ones are; phones with a glued area code;
gzip inside base64; rot13 inside other encodings.

Real HTTP, the official SDKs, recording upstream doubles."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.gateway.conftest import ant, oai
from tests.privacy.pdfs import bomb_pdf, deep_pdf, encrypted_pdf, make_pdf
from tests.privacy.support import SEEDS, privacy_config

EMAIL = SEEDS["EMAIL_ADDRESS"]
CARD = SEEDS["CREDIT_CARD"]
LINES = ["Invoice 2026-114", "Customer: Jane Doe", f"Email: {EMAIL}", f"Card {CARD}", "Thank you."]
PLACEHOLDER = re.compile(r"<[A-Z_]+_\d+>")


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def sent(up) -> dict:
    assert up.requests
    return json.loads(up.requests[-1].raw)


def no_pdf_left(body: dict) -> None:
    raw = json.dumps(body)
    assert "JVBER" not in raw and EMAIL not in raw and CARD not in raw, raw[:400]


def doc_block(pdf: bytes, media_type: str = "application/pdf") -> dict:
    return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": b64(pdf)},
            "title": "invoice.pdf"}


# ---------------------------------------------------------------------------- PDFs

@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_pdf_document_with_pii_leaves_as_its_redacted_text_and_the_answer_is_restored(remote):
    g, up = remote
    r = ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        doc_block(make_pdf(LINES)), {"type": "text", "text": "Summarise the invoice."}]}])
    body = sent(up)
    no_pdf_left(body)
    first = body["messages"][0]["content"][0]
    assert first["type"] == "text" and "invoice.pdf" in first["text"] and "Invoice 2026-114" in first["text"]
    assert len(set(PLACEHOLDER.findall(first["text"]))) >= 2, first["text"]
    answer = r.content[0].text
    assert EMAIL in answer and CARD in answer  # the echoed placeholders, restored


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_a_pdf_file_part_with_pii_leaves_as_its_redacted_text(remote):
    g, up = remote
    oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": [
        {"type": "text", "text": "Summarise the attached invoice."},
        {"type": "file", "file": {"filename": "invoice.pdf",
                                  "file_data": f"data:application/pdf;base64,{b64(make_pdf(LINES))}"}}]}])
    body = sent(up)
    no_pdf_left(body)
    content = body["messages"][0]["content"]  # text parts only: the encoder may join them into one string
    text = content if isinstance(content, str) else "".join(p["text"] for p in content)
    assert "Invoice 2026-114" in text and PLACEHOLDER.search(text), content


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_pii_in_a_pdf_s_metadata_or_behind_junk_before_its_header_is_found(remote):
    """Readers accept bytes before `%PDF-`, and a document's title travels in the file: both were read."""
    g, up = remote
    pdf = b"\x89junk\x00" * 8 + make_pdf(["Quarterly figures attached."], title=f"Notes for {EMAIL}")
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        doc_block(pdf, media_type="application/octet-stream"), {"type": "text", "text": "Summarise."}]}])
    no_pdf_left(sent(up))


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_pdf_without_findings_leaves_as_it_came(remote):
    g, up = remote
    pdf = make_pdf(["Quarterly figures: revenue up 4 percent.", "Nothing personal here."])
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        doc_block(pdf), {"type": "text", "text": "Summarise."}]}])
    assert sent(up)["messages"][0]["content"][0]["source"]["data"] == b64(pdf)


@pytest.mark.parametrize("make", [lambda: b"%PDF-1.7\n" + b"\x00garbage" * 50, bomb_pdf, deep_pdf, encrypted_pdf],
                         ids=["broken", "bomb", "deep", "encrypted"])
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_pdf_that_cannot_be_read_is_not_sent_to_the_remote_model(remote, openai_up, make):
    """Fails closed: the fallback route's remote is refused and the local model answers."""
    g, up = remote
    r = ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        doc_block(make()), {"type": "text", "text": "Summarise."}]}])
    assert not up.requests, "reached the remote model"
    assert openai_up.requests and r.content, "the local model did not answer"


def test_extraction_past_its_time_bound_reads_as_unreadable(monkeypatch):
    """A 30 KB PDF whose content stream is `(x) Tj` 700,000 times took 125 s of pypdf in one page: the child is
    killed at `MAX_SECONDS` (here 1 s)."""
    import zlib

    from tierwise.privacy import pdf_text

    monkeypatch.setattr(pdf_text, "MAX_SECONDS", 1.0)
    pdf = make_pdf([], content=zlib.compress(b"BT /F1 11 Tf (x) Tj ET\n" * 700_000, 9))
    assert pdf_text.text_of(b64(pdf)) == pdf_text.UNREADABLE


@pytest.fixture
def local_only(gateway, openai_up, anthropic_up):
    fb = {"fb": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}}
    cfg = privacy_config(openai_up.url, anthropic_up.url, fb, policy={"pii": "local_only"})
    cfg["privacy"]["classes"] = {"pii": {}}
    cfg["server"]["default_route"] = "fb"
    return gateway(cfg), anthropic_up, openai_up


def test_under_local_only_a_pdf_with_pii_stays_local(local_only):
    g, remote, local = local_only
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        doc_block(make_pdf(LINES)), {"type": "text", "text": "Summarise."}]}])
    assert not remote.requests and local.requests


# ---------------------------------------------------------------------------- text payloads not in UTF-8

NOTE = f"Kundnotis, 3 mars.\nKund: Jöns Åberg, e-post {EMAIL}, kort {CARD}.\nÅterkom nästa vecka, tack.\n"


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16"])
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_text_document_not_in_utf8_is_redacted_and_stays_in_its_encoding(remote, encoding):
    g, up = remote
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "text/plain",
                                        "data": b64(NOTE.encode(encoding))}},
        {"type": "text", "text": "Summarise the document."}]}])
    source = sent(up)["messages"][0]["content"][0]["source"]
    got = base64.b64decode(source["data"], validate=True).decode(encoding)
    assert EMAIL not in got and CARD not in got and len(PLACEHOLDER.findall(got)) == 2, got
    assert got.startswith("Kundnotis, 3 mars.\nKund: Jöns Åberg, e-post <") and got.endswith("tack.\n"), got


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_a_latin1_text_file_part_is_redacted(remote):
    g, up = remote
    oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": [
        {"type": "text", "text": "Summarise the attached notes."},
        {"type": "file", "file": {"filename": "notes.txt",
                                  "file_data": f"data:text/plain;charset=iso-8859-1;base64,{b64(NOTE.encode('latin-1'))}"}}]}])
    head, _, payload = sent(up)["messages"][0]["content"][1]["file"]["file_data"].partition(",")
    assert head == "data:text/plain;charset=iso-8859-1;base64"
    got = base64.b64decode(payload, validate=True).decode("latin-1")
    assert EMAIL not in got and CARD not in got and "Jöns Åberg" in got


def test_latin1_in_base64_inside_text_is_read(det):
    """The encoded view (structured values in a base64 run of a text) read only UTF-8 and ASCII UTF-16."""
    blob = b64(f"Kund: Jöns Åberg, kort {CARD}, tack så mycket".encode("latin-1"))
    assert "CREDIT_CARD" in {f.entity for f in det.scan(f"see the record {blob} from the old system")}


def test_random_bytes_are_not_read_as_latin1_or_utf16_text():
    """The new readings must not take binary for text: random bytes of an id's size (24) and of a payload's head."""
    import random

    from tierwise.privacy.charsets import decode, single_byte

    rnd = random.Random(13)
    assert sum(single_byte(rnd.randbytes(n)) for n in (24, 48, 3072) for _ in range(20_000)) == 0
    assert sum(decode(rnd.randbytes(48)) is not None for _ in range(20_000)) == 0


# ---------------------------------------------------------------------------- phones, gzip, rot13 inside encodings

@pytest.mark.parametrize("text", ["banana(415)555-2671", "name(415)5550100", "x+1(415)5550100y",
                                  "jane(415)555-0100doe", "(415)555-0100x", "foo(212)555-0199bar"])
def test_a_phone_whose_bracketed_area_code_is_glued_to_a_word_is_found_whole(det, text):
    """Round 13: the area code stayed (`banana(415)555-2671` -> `555-2671`) or nothing was found."""
    digits = "".join(c for c in text if c.isdigit())
    got = [text[f.start:f.end] for f in det.scan(text) if f.entity == "PHONE_NUMBER"]
    assert any("".join(c for c in g if c.isdigit()).endswith(digits[-10:]) for g in got), got


def _b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


VALUE = f"contact {EMAIL} card {CARD}"


@pytest.mark.parametrize("shape", ["gzip", "gzip of base64", "zlib", "hex of gzip", "rot13 inside base64",
                                   "hex of rot13'd base64"])
def test_gzip_and_rot13_inside_other_encodings_are_read(det, shape):
    import codecs
    import gzip
    import zlib

    blob = {"gzip": _b64(gzip.compress(VALUE.encode())),
            "gzip of base64": _b64(gzip.compress(_b64(VALUE).encode())),
            "zlib": _b64(zlib.compress(VALUE.encode())),
            "hex of gzip": gzip.compress(VALUE.encode()).hex(),
            "rot13 inside base64": _b64(codecs.encode(_b64(VALUE), "rot13")),
            "hex of rot13'd base64": codecs.encode(_b64(VALUE), "rot13").encode().hex()}[shape]
    assert {"EMAIL_ADDRESS", "CREDIT_CARD"} & {f.entity for f in det.scan(f"payload {blob} end")}


def test_a_gzip_bomb_is_read_only_to_its_bound(det):
    import gzip

    from tierwise.privacy.detect import DetectorError
    from tierwise.privacy.packed import PackedCut, unpack

    bomb = gzip.compress(b"1111 " * 2_000_000)
    with pytest.raises(PackedCut):  # review33d: read to its bound, and not cut silently (what lies past is unread)
        unpack(bomb)
    with pytest.raises(DetectorError):  # no blow-up; fails closed
        det.scan(f"payload {_b64(bomb)} end")


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_a_gzipped_value_does_not_leave(remote):
    import gzip

    g, up = remote
    blob = _b64(gzip.compress(VALUE.encode()))
    oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": f"decode this: {blob}"}])
    assert blob not in up.requests[-1].raw.decode()


def test_the_runs_of_one_text_share_one_inflation_budget():
    """1 MB of small gzip bombs, each inflated to its own bound, made 18 MB of digits to scan (48 s): all the runs of
    one text inflate at most the text's size plus `SLACK` together."""
    import gzip

    from tierwise.privacy.packed import SLACK, PackedCut, budget, unpack

    bomb = gzip.compress(b"1111 " * 600)  # 3,000 bytes: under its own bound (8x + SLACK)
    total = 0
    with budget(1000), pytest.raises(PackedCut):  # review33d: past the budget, the scan fails (closed)
        for _ in range(50):
            total += len(unpack(bomb) or b"")
    assert total <= 1000 + SLACK


def test_base64_text_with_a_garbage_tail_is_not_latin1_and_keeps_the_next_run_s_cue(det):
    """Without the word-gap rule, the first run (base64 text, `-Office` glued after it) read as Latin-1 prose, took the
    cue word `Office` from the second run and its phone (outside `phone_regions` without a cue) was lost."""
    t = ("Hungary 34796\nVmxod1ExVXhVbkpOU0dSclVteEtVMVpyVlRGVlZsWnlXa2QwVGxKc1NsZFdWM2gzWWtad05rMUVhejA9-Office\\,"
         "Vm10YVYxVXlSbkpOU0dST1ZsWmFVMVpxU2xOVU1WWnlWMjVPVDJKRk5WZFdWelZMVkcxR05sWnVWbFpTYkVZelZVWkZPVkJSUFQwPQ==-Fax")
    assert "PHONE_NUMBER" in {f.entity for f in det.scan(t)}
