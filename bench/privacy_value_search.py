"""How the privacy boundary's search for known values scales: `ValueSpread.add` (every whole-word
occurrence of the request's detected values in a text) and the leak check (every value in the encoded
body), for N distinct e-mail addresses in one text, and for one two-letter name repeated 1.3 million
times (a 3.9 MB text). CPU seconds, one run each. Runs against either tree (PYTHONPATH picks it): main's
leak check is `boundary._contains` per value, this branch's `request_vocabulary.values_in_body`.

    PYTHONPATH=src nice -n 5 .venv/bin/python bench/privacy_value_search.py
"""

from __future__ import annotations

import time

import orjson

from tierwise.privacy.detect import Detector
from tierwise.privacy.request_vocabulary import ValueSpread

try:
    from tierwise.privacy.request_vocabulary import values_in_body
except ImportError:  # main before attack-privacy3
    from tierwise.privacy.boundary import _contains

    def values_in_body(body: bytes, values: list[str]) -> list[str]:  # type: ignore[misc]
        return [v for v in values if _contains(body, v)]


def cpu(fn):  # type: ignore[no-untyped-def]
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def main() -> None:
    det = Detector.from_dict({"classes": {"pii": {}}, "ner": {"enabled": False}})
    print("| case | characters | values | spread, s | leak check, s |")
    print("|---|---:|---:|---:|---:|")
    for n in (2000, 8000, 32000):
        text = " ".join(f"u{i}@b.io" for i in range(n))
        found = det.scan(text)
        values = {text[f.start:f.end]: f.entity for f in found}
        spread_s, _ = cpu(lambda v=values, t=text, f=found: ValueSpread(v).add(t, f))
        body = orjson.dumps({"m": " ".join(f"<EMAIL_ADDRESS_{i}>" for i in range(n))})
        leak_s, leaked = cpu(lambda b=body, v=values: values_in_body(b, list(v)))
        assert not leaked
        print(f"| {n:,} distinct e-mail addresses | {len(text):,} | {len(values):,} | {spread_s:.3f} | {leak_s:.3f} |")
    text = "Ed " * 1_300_000
    spread_s, got = cpu(lambda: ValueSpread({"Ed": "PERSON"}).add(text, []))
    print(f"| `Ed ` × 1,300,000 ({len(got):,} occurrences redacted) | {len(text):,} | 1 | {spread_s:.3f} | - |")


if __name__ == "__main__":
    main()
