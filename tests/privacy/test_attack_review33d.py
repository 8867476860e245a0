"""Review of privacy round 13 (session 33, review33d): PDFs whose text reaches the model but not pypdf's page text
(glyphs placed one at a time, annotation appearances, attachments, XMP, bookmarks), and the extraction child's bounds
across many PDFs in one request.

Real HTTP, the official SDKs, recording upstream doubles."""

from __future__ import annotations

import base64
import json

import pytest

from tests.gateway.conftest import ant
from tests.privacy.pdfs import appearance_pdf, attachment_pdf, glyph_pdf, outline_pdf, xmp_pdf
from tests.privacy.support import SEEDS

EMAIL = SEEDS["EMAIL_ADDRESS"]


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def doc_block(pdf: bytes) -> dict:
    return {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": b64(pdf)},
            "title": "notes.pdf"}


HIDDEN = {
    "glyph-per-Td": lambda: glyph_pdf(EMAIL, "Td"),
    "glyphs-drawn-right-to-left": lambda: glyph_pdf(EMAIL, "reversed"),
    "glyphs-kerned-in-one-TJ": lambda: glyph_pdf(EMAIL, "TJ"),
    "annotation-appearance": lambda: appearance_pdf(EMAIL),
    "attached-text-file": lambda: attachment_pdf(f"Customer: {EMAIL}\n"),
    "xmp-metadata": lambda: xmp_pdf(EMAIL),
    "bookmark-title": lambda: outline_pdf(EMAIL),
}


@pytest.mark.parametrize("make", list(HIDDEN.values()), ids=list(HIDDEN))
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_pdf_s_text_outside_its_page_text_does_not_reach_the_remote_model(remote, make):
    g, up = remote
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        doc_block(make()), {"type": "text", "text": "Summarise."}]}])
    assert up.requests
    raw = up.requests[-1].raw.decode() if isinstance(up.requests[-1].raw, bytes) else up.requests[-1].raw
    assert "JVBER" not in raw and EMAIL not in raw, raw[:300]
    assert "notes.pdf" in json.loads(raw)["messages"][0]["content"][0]["text"]


# ---------------------------------------------------------------------------- the extraction child's bounds

def _counting(monkeypatch):
    """Record each extraction child started: (its PDF, whether it ran on a thread with a running event loop)."""
    import asyncio

    from tierwise.privacy import pdf_text

    calls: list[tuple[str, bool]] = []
    real = pdf_text._extract

    def extract(payload, *a, **kw):
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        calls.append((payload, on_loop))
        return real(payload, *a, **kw)

    monkeypatch.setattr(pdf_text, "_extract", extract)
    monkeypatch.setattr(pdf_text, "_cache", type(pdf_text._cache)())
    return calls


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_request_with_more_pdfs_than_the_cache_reads_each_once_and_never_on_the_event_loop(remote, monkeypatch):
    """12 PDFs, the cache holds 8: the scan on the event loop extracted the 4 evicted ones again there (a child of up
    to 10 s each, blocking every request of the gateway)."""
    from tests.privacy.pdfs import make_pdf

    calls = _counting(monkeypatch)
    g, up = remote
    docs = [doc_block(make_pdf([f"Quarterly figures, part {i}."])) for i in range(12)]
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        *docs, {"type": "text", "text": "Summarise."}]}])
    assert up.requests
    assert len(calls) == 12, f"{len(calls)} extractions for 12 PDFs"
    assert not any(on_loop for _, on_loop in calls), "a PDF was extracted on the event loop"


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_the_pdfs_of_one_request_share_one_time_budget(remote, openai_up, monkeypatch):
    """Six PDFs that each run the child to its bound (here 1 s) with a request budget of 2 s: the request is refused
    for the remote model (fails closed) after at most three children, not six."""
    import zlib

    from tests.privacy.pdfs import make_pdf
    from tierwise.privacy import pdf_text

    monkeypatch.setattr(pdf_text, "MAX_SECONDS", 1.0)
    monkeypatch.setattr(pdf_text, "MAX_REQUEST_SECONDS", 2.0, raising=False)
    # (wire14: six pages count 15,000 tokens, past the local model's 8,192-token window; this test is about the scan's
    # time budget, and the fallback must take the request)
    monkeypatch.setattr("tierwise.tokens.PER_PDF_PAGE", 100)
    calls = _counting(monkeypatch)
    g, up = remote
    slow = [make_pdf([], content=zlib.compress(b"BT /F1 11 Tf (x) Tj ET\n" * (700_000 + i), 9)) for i in range(6)]
    r = ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        *[doc_block(p) for p in slow], {"type": "text", "text": "Summarise."}]}])
    assert not up.requests and openai_up.requests and r.content
    assert len(calls) <= 3, f"{len(calls)} children for one request"


# ---------------------------------------------------------------------------- text payloads in East Asian encodings

CARD = SEEDS["CREDIT_CARD"]
CJK = {
    "ja": f"顧客メモ、3月3日。\n顧客：山田太郎、メール {EMAIL}、カード {CARD}。\n来週また連絡します、ありがとうございます。\n",
    "zh": f"客户备注，3月3日。\n客户：王小明，邮箱 {EMAIL}，卡号 {CARD}。\n下周再联系，谢谢。\n",
    "tw": f"客戶備註，3月3日。\n客戶：王小明，郵箱 {EMAIL}，卡號 {CARD}。\n下週再聯繫，謝謝。\n",
    "ko": f"고객 메모, 3월 3일.\n고객: 김민수, 이메일 {EMAIL}, 카드 {CARD}.\n다음 주에 다시 연락드리겠습니다.\n",
}


@pytest.mark.parametrize("lang,encoding", [("ja", "shift_jis"), ("ja", "euc_jp"), ("zh", "gb18030"), ("tw", "big5"),
                                           ("ko", "euc_kr"), ("ja", "utf-16-le"), ("ko", "utf-16-be"),
                                           ("zh", "utf-32")])
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_cjk_text_document_is_redacted_and_stays_in_its_encoding(remote, lang, encoding):
    """These were binary (no BOM, too few zero bytes for UTF-16's rule, bytes past ASCII that are not Latin-1 prose):
    the document reached the remote model with its address and card."""
    import re

    g, up = remote
    note = CJK[lang]
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "text/plain",
                                        "data": b64(note.encode(encoding))}},
        {"type": "text", "text": "Summarise the document."}]}])
    source = json.loads(up.requests[-1].raw)["messages"][0]["content"][0]["source"]
    got = base64.b64decode(source["data"], validate=True).decode(encoding)
    assert EMAIL not in got and CARD not in got, got
    assert re.sub(r"<[A-Z_]+_\d+>", "V", got) == note.replace(EMAIL, "V").replace(CARD, "V")


def test_random_bytes_are_not_read_as_cjk_text():
    import random

    from tierwise.privacy.charsets import decode

    rnd = random.Random(33)
    assert sum(decode(rnd.randbytes(n), partial=p) is not None
               for n in (64, 96, 3072) for p in (False, True) for _ in range(10_000)) == 0


# ---------------------------------------------------------------------------- gzip inside encodings

def _gz(b: bytes) -> bytes:
    import gzip

    return gzip.compress(b)


@pytest.mark.parametrize("shape", ["gzip-of-gzip", "gzip-of-base64-of-gzip", "zlib-of-zlib"])
def test_gzip_inside_gzip_is_read(det, shape):
    """Round 13 inflated once per chain: a value gzipped twice was a SECRET by entropy at most (nothing under `pii`)."""
    import zlib

    value = f"mail {EMAIL} ok".encode()
    blob = {"gzip-of-gzip": lambda: _gz(_gz(value)), "gzip-of-base64-of-gzip": lambda: _gz(b64(_gz(value)).encode()),
            "zlib-of-zlib": lambda: zlib.compress(zlib.compress(value))}[shape]()
    assert "EMAIL_ADDRESS" in {f.entity for f in det.scan(f"see {b64(blob)} here")}


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_a_gzipped_value_after_a_bomb_does_not_leave(remote):
    """A 13 KB gzip bomb spent the text's inflation budget and the gzipped address after it was not read: it left
    (`pii` only: the blob's entropy makes a SECRET at most). Now the scan fails closed."""
    from tests.gateway.conftest import oai

    g, up = remote
    bomb, blob = b64(_gz(b"0" * 10_000_000)), b64(_gz(f"mail {EMAIL} ok".encode()))
    oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": f"a {bomb} b {blob} c"}])
    assert all(blob not in r.raw.decode() for r in up.requests)


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_the_texts_of_one_request_share_one_inflation_budget(remote, monkeypatch):
    """300 messages each holding a 384-character gzip of 4 KB of digits inflated ~4.5 KB each (each text had its own
    budget): 40x the scan's CPU of plain messages. All the request's texts together now inflate at most its size."""
    from tests.gateway.conftest import oai
    from tierwise.privacy import encoded, packed

    inflated: list[int] = []
    real = encoded.unpack

    def count(raw):
        out = real(raw)
        inflated.append(len(out or b""))
        return out

    monkeypatch.setattr(encoded, "unpack", count)
    g, up = remote
    blob = b64(_gz(b"4111 1111 1111 1112 " * 200))
    msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"field {i}: {blob}"} for i in range(301)]
    chars = sum(len(m["content"]) for m in msgs)
    oai(g).chat.completions.create(model="fb", messages=msgs)
    assert sum(inflated) <= chars + packed.SLACK, (sum(inflated), chars)


def test_extraction_children_across_requests_are_bounded(monkeypatch):
    """Each child may take 1 GB: 32 requests' worker threads ran 32 children at once. At most `MAX_CHILDREN` now."""
    import threading

    from tierwise.privacy import pdf_text

    monkeypatch.setattr(pdf_text, "_children", threading.BoundedSemaphore(2))
    monkeypatch.setattr(pdf_text, "_cache", type(pdf_text._cache)())
    running, peak, lock, release = [0], [0], threading.Lock(), threading.Event()

    def run(payload, seconds):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        release.wait(0.3)
        with lock:
            running[0] -= 1
        return "text"

    monkeypatch.setattr(pdf_text, "subprocess", None)  # no child is started in this test
    monkeypatch.setattr(pdf_text, "_run", run)
    threads = [threading.Thread(target=pdf_text.read_all, args=([f"JVBERi0x{i:04d}"],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 2
