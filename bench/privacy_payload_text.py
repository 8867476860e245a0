"""Values inside document payloads (privacy round 13): the structured values of `pii-presidio-synth`'s sentences put
into files a client uploads as base64, and how many of them the request scan finds, per tree.

Forms: a PDF (Flate-compressed content stream, as real PDFs have it; 50 sentences a page, one PDF per 50), a
`text/plain` document in Latin-1 (cp1252), and one in UTF-16 with its byte-order mark (25 sentences a document), each
as an Anthropic `document` block with a base64 source. A gold value (CREDIT_CARD, IBAN_CODE, US_SSN, PHONE_NUMBER,
EMAIL_ADDRESS, IP_ADDRESS) counts as found when its letters and digits lie inside the letters and digits of the
findings of its entity in that document's texts (structured layer, NER off, every built-in entity).

    HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data .venv/bin/python bench/privacy_payload_text.py --src src
    (and --src /tmp/base/src; a tree without pypdf's reader finds no PDF text)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import zlib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.privacy.pdfs import pdf_document  # noqa: E402 (the tests' PDF writer: objects, cross-references, trailer)

ENTITIES = ["CREDIT_CARD", "IBAN_CODE", "US_SSN", "PHONE_NUMBER", "EMAIL_ADDRESS", "IP_ADDRESS"]


def make_pdf(lines: list[str]) -> bytes:
    """A one-page PDF of `lines` (Helvetica, WinAnsi, a Flate-compressed content stream)."""
    ops = ["BT", "/F1 9 Tf", "30 780 Td", "11 TL"]
    for ln in lines:
        esc = ln.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({esc}) Tj T*")
    ops.append("ET")
    content = zlib.compress("\n".join(ops).encode("cp1252", "replace"))
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R"
            b" >> >> >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"]
    return pdf_document(objs)


def compact(s: str) -> str:
    return "".join(c for c in s if c.isalnum())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--limit", type=int, default=1500)
    args = ap.parse_args()
    sys.path.insert(0, args.src)
    from tierwise.canonical import Message, OtherBlock, Request
    from tierwise.privacy.detect import Detector
    from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DetectionConfig
    from tierwise.privacy.request_scan import iter_texts

    det = Detector(DetectionConfig.model_validate({
        "classes": {"all": {"detectors": list(BUILTIN_ENTITIES)}}, "ner": {"enabled": False}}))
    data = Path(os.environ.get("TIERWISE_DATA") or ROOT.parent / "shared" / "data")
    rows = json.loads((data / "pii-presidio-synth" / "synth_dataset_v2.json").read_text())[: args.limit]
    rows = [r for r in rows if any(s["entity_type"] in ENTITIES for s in r["spans"])]
    forms = {"plain text source (the ceiling)": (25, lambda t: ("text/plain", t)),
             "pdf": (50, lambda t: ("application/pdf", make_pdf(t.split("\n")))),
             "latin-1 text": (25, lambda t: ("text/plain", t.encode("cp1252", "replace"))),
             "utf-16 text": (25, lambda t: ("text/plain", t.encode("utf-16")))}
    for form, (per, make) in forms.items():
        n: dict[str, int] = defaultdict(int)
        hit: dict[str, int] = defaultdict(int)
        for i in range(0, len(rows), per):
            chunk = rows[i:i + per]
            text = "\n".join(" ".join(r["full_text"].split()) for r in chunk)
            media, raw = make(text)
            source = {"type": "text", "media_type": media, "data": raw} if isinstance(raw, str) else {
                "type": "base64", "media_type": media, "data": base64.b64encode(raw).decode()}
            block = OtherBlock({"type": "document", "source": source})
            req = Request(model="m", messages=[Message("user", [block])])
            got: dict[str, str] = defaultdict(str)
            for _, t in iter_texts(req):
                try:
                    found = det.scan(t)
                except Exception:  # noqa: BLE001 - an unreadable document: nothing found in it
                    found = []
                for f in found:
                    got[f.entity] += compact(t[f.start:f.end]) + "|"
            for r in chunk:
                for s in r["spans"]:
                    if s["entity_type"] in ENTITIES:
                        v = compact(r["full_text"][s["start_position"]:s["end_position"]])
                        n[s["entity_type"]] += 1
                        hit[s["entity_type"]] += v in got[s["entity_type"]]
        cells = " | ".join(f"{hit[e] / n[e]:.2f} ({n[e]})" for e in ENTITIES)
        print(f"| {form} | {cells} |")


if __name__ == "__main__":
    main()
