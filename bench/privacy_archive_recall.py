"""Privacy round 15 (privacy15): does a value packed in a file lose the detector? Each structured value of the
presidio synthetic data set (CREDIT_CARD, EMAIL_ADDRESS, PHONE_NUMBER, IBAN_CODE, US_SSN, IP_ADDRESS: 328 spans), its
sentence as plain text, with no-break spaces, and as a file in a zip (UTF-8, UTF-16, no-break spaces) or a gzip:
found (a finding covers the value) or not, or the payload refused as opaque. NER off.

    TIERWISE_DATA=/work/shared/data PYTHONPATH=src .venv/bin/python bench/privacy_archive_recall.py
"""

from __future__ import annotations

import base64
import collections
import gzip
import io
import json
import os
import zipfile

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import DetectionConfig
from tierwise.privacy.media_text import media_text
from tierwise.privacy.payload_bytes import opaque

STRUCT = {"CREDIT_CARD", "EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE", "US_SSN", "IP_ADDRESS"}


def covered(d: Detector, texts: list[str], value: str) -> bool:
    for t in texts:
        for f in d.scan(t):
            got = t[f.start:f.end].replace("\xa0", " ")
            if value in got or (got in value and len(got) >= len(value) * 0.8):
                return True
    return False


def zipped(b: bytes) -> bytes:
    o = io.BytesIO()
    with zipfile.ZipFile(o, "w", zipfile.ZIP_DEFLATED) as f:
        f.writestr("n.txt", b)
    return o.getvalue()


FORMS = {
    "plain": None, "plain-nbsp": None,
    "zip": lambda s: zipped(s.encode()), "gzip": lambda s: gzip.compress(s.encode()),
    "zip-utf16": lambda s: zipped(s.encode("utf-16")), "zip-nbsp": lambda s: zipped(s.replace(" ", "\xa0").encode()),
}


def main() -> None:
    d = Detector(DetectionConfig.model_validate({"ner": {"enabled": False}}))
    path = os.path.join(os.environ.get("TIERWISE_DATA", "../shared/data"), "pii-presidio-synth", "synth_dataset_v2.json")
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    stats: collections.Counter[tuple[str, str]] = collections.Counter()
    for rec in data:
        text = rec["full_text"]
        for sp in rec["spans"]:
            if sp["entity_type"] not in STRUCT:
                continue
            v = text[sp["start_position"]:sp["end_position"]]
            for name, mk in FORMS.items():
                if mk is None:
                    texts = [text.replace(" ", "\xa0") if name == "plain-nbsp" else text]
                else:
                    p = base64.b64encode(mk(text)).decode()
                    if opaque(p):
                        stats[(name, "refused as opaque")] += 1
                        continue
                    texts = list(media_text(p))
                stats[(name, "found" if covered(d, texts, v) else "missed")] += 1
    for k in sorted(stats):
        print(f"{k[0]:12} {k[1]:18} {stats[k]}")


if __name__ == "__main__":
    main()
