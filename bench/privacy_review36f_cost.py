"""Review36f's costs: `media_text._position_elsewhere` on 32 MB of random bytes (three shapes, best of 3), and the PDF
extraction child on a PDF with N unlisted `(note)` objects. Run on a tree and on a baseline tree:

    PYTHONPATH=src .venv/bin/python bench/privacy_review36f_cost.py
"""

from __future__ import annotations

import base64
import random
import sys
import time

sys.path.insert(0, ".")

from tests.privacy.pdfs import _FONT, _HELLO, _page, pdf_document  # noqa: E402
from tierwise.privacy import media_text, pdf_text  # noqa: E402


def _best(f, n: int = 3) -> float:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return min(out)


def main() -> None:
    rnd = random.Random(7)
    raw = rnd.randbytes(32 * 2**20)
    shapes = {
        "ftyp-then-random": b"\x00\x00\x00\x18ftypisom" + raw,
        "random": raw,
        "mp4-with-32MB-mdat": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + (len(raw) + 8).to_bytes(4, "big") +
        b"mdat" + raw,
    }
    for name, r in shapes.items():
        print(f"position_elsewhere {name}: {_best(lambda r=r: media_text._position_elsewhere(r)) * 1000:.0f} ms / 32 MB")
    base = pdf_document([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", _page(),
                         _HELLO, _FONT])
    at = base.index(b"xref\n")
    for n in (10_000, 100_000):
        objs = b"".join(b"%d 0 obj\n(note %d)\nendobj\n" % (100 + i, i) for i in range(n))
        pdf = (base[:at] + objs + base[at:]).replace(b"startxref\n%d" % at, b"startxref\n%d" % (at + len(objs)))
        payload = base64.b64encode(pdf).decode()
        t = time.perf_counter()
        got = pdf_text._run(payload, 30)
        dt = time.perf_counter() - t
        print(f"pdf child, {n} unlisted objects ({len(pdf) // 1024} KB): "
              f"{'UNREADABLE' if got == pdf_text.UNREADABLE else str(len(got)) + ' chars'} in {dt:.1f} s")


if __name__ == "__main__":
    main()
