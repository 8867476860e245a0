"""What counting an inline PDF's pages (tierwise/pdf_pages.py, wire14) costs `estimate_request`: CPU time per call
for a request carrying one base64 PDF of N pages, pages as plain objects and packed in an object stream, and for
random bytes of the same size (nothing to find: the decode and the scans only). With `--hostile`, review37d's hostile
requests: object-stream markers before one big stream, many small compression bombs in one request, one page
object repeated, a body dense in `/` and `#` (the escaped-name patterns' worst case).

    PYTHONPATH=src .venv/bin/python bench/pdf_pages_cost.py [--hostile]
"""

from __future__ import annotations

import base64
import os
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tierwise.canonical import Message, OtherBlock, Request, TextBlock  # noqa: E402
from tierwise.tokens import estimate_request  # noqa: E402

_PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"


def _doc(objs: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.7\n")
    for i, o in enumerate(objs, 1):
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    return bytes(out + b"%%EOF\n")


def plain(pages: int, filler: int) -> bytes:
    """`pages` page objects, each followed by a `filler`-byte stream (a page's content, incompressible)."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Count %d >>" % pages]
    for _ in range(pages):
        objs += [_PAGE, b"<< /Length %d >>\nstream\n" % filler + os.urandom(filler) + b"\nendstream"]
    return _doc(objs)


def packed(pages: int) -> bytes:
    body = zlib.compress(b"\n".join([b"<< /Type /Pages /Count %d >>" % pages, *[_PAGE] * pages]))
    return _doc([b"<< /Type /Catalog /Pages 2 0 R >>",
                 b"<< /Type /ObjStm /N %d /First 0 /Length %d /Filter /FlateDecode >>\nstream\n" % (pages + 1, len(body))
                 + body + b"\nendstream"])


def per_call(pdf: bytes | list[bytes], n: int) -> float:
    pdfs = pdf if isinstance(pdf, list) else [pdf]
    req = Request(model="m", messages=[Message("user", [*[OtherBlock({"type": "document", "source": {
        "type": "base64", "media_type": "application/pdf", "data": base64.b64encode(p).decode()}}) for p in pdfs],
        TextBlock("summarise")])])
    estimate_request(req)
    t = time.process_time()
    for _ in range(n):
        estimate_request(req)
    return (time.process_time() - t) / n * 1000


def hostile() -> list[tuple[str, bytes | list[bytes]]]:
    bomb = zlib.compress(bytes(16 * 1024 * 1024), 9)
    bomb_pdf = b"%PDF-1.7\n<</Type/ObjStm/N 1/Filter/FlateDecode>>stream\n" + bomb + b"\nendstream"
    return [("4,096 ObjStm markers, one 8 MB stream", b"%PDF-1.7\n" + b"<</Type/ObjStm/N 1/Filter/FlateDecode>>" * 4096
             + b"stream\n" + os.urandom(8_000_000)),
            ("50 PDFs, each a 16 MB bomb", [bomb_pdf] * 50),
            ("one page object 500,000 times", b"%PDF-1.7\n" + b"5 0 obj<</Type/Page>>" * 500_000),
            ("/T#79pe# 1,000,000 times", b"/T#79pe#" * 1_000_000)]


def main() -> None:
    if "--hostile" in sys.argv:
        for name, pdf in hostile():
            size = sum(len(p) for p in pdf) if isinstance(pdf, list) else len(pdf)
            print(f"{name:40} {size / 1e6:6.2f} MB  {per_call(pdf, 2):9.2f} ms CPU per estimate_request")
        return
    cases = [("10 pages, 50 KB each (plain)", plain(10, 50_000)), ("100 pages, 50 KB each (plain)", plain(100, 50_000)),
             ("1,000 pages (object stream)", packed(1000)), ("random 1 MB", os.urandom(1_000_000)),
             ("random 10 MB", os.urandom(10_000_000))]
    for name, pdf in cases:
        n = 5 if len(pdf) > 2_000_000 else 50
        print(f"{name:32} {len(pdf) / 1e6:6.2f} MB  {per_call(pdf, n):8.2f} ms CPU per estimate_request")


if __name__ == "__main__":
    main()
