"""review37e: what setting PDF dates aside costs the detector (NER off). 1. Texts of 20,000 characters of words and
numbers with two PDF dates at the top, and without: CPU ms a text (the dates' windows are read again). 2. The same
date repeated (`D:20261207140009 `) at 25k, 50k and 100k characters: CPU s (linear since review37e; privacy17's filter
compared every finding with every date).

    PYTHONPATH=src .venv/bin/python bench/privacy_pdf_date_cost.py
"""

import random
import time

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import DetectionConfig

WORDS = "the invoice total was paid on account number ref order item page of and to for with".split()
HEAD = "/CreationDate (D:20261207140009Z) /ModDate (D:20261207140009+01'00')\n"


def main() -> None:
    det = Detector(DetectionConfig.model_validate({"ner": {"enabled": False}}))
    r = random.Random(1)

    def body(n: int) -> str:
        out: list[str] = []
        while sum(map(len, out)) < n:
            out.append(r.choice(WORDS) if r.random() < 0.85 else str(r.randint(1, 99999)))
        return " ".join(out)

    for label, head in (("with two PDF dates", HEAD), ("without", "")):
        texts = [head + body(20_000) + f" {i}" for i in range(30)]
        t = time.process_time()
        for x in texts:
            det.scan(x)
        print(f"{label}: {(time.process_time() - t) / len(texts) * 1000:.2f} ms per 20k-character text")
    unit = "D:20261207140009 "
    for n in (25_000, 50_000, 100_000):
        text = (unit * (n // len(unit)))[:n]
        t = time.process_time()
        det.scan(text)
        print(f"{unit!r} x {n:,} characters: {time.process_time() - t:.2f} s")


if __name__ == "__main__":
    main()
