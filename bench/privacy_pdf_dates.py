"""privacy17: how often a PDF's dates (`D:YYYYMMDDHHmmSS` and a zone form) read as a card or a phone number to the
detector (default classes, NER off): random dates 1995-2030 in six forms a PDF writes.

    PYTHONPATH=src .venv/bin/python bench/privacy_pdf_dates.py [--n 2000]
"""

import argparse
import collections
import random

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import DetectionConfig

FORMS = ["D:%sZ", "D:%s+01'00'", "D:%s-05'00'", "D:%s", "/CreationDate (D:%s)", "D:%sZ00'00'"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    a = ap.parse_args()
    det = Detector(DetectionConfig.model_validate({"ner": {"enabled": False}}))
    r = random.Random(5)
    per_form: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for _ in range(a.n):
        parts = (r.randint(1995, 2030), r.randint(1, 12), r.randint(1, 28), r.randint(0, 23),
                 r.randint(0, 59), r.randint(0, 59))
        d = "{:04d}{:02d}{:02d}{:02d}{:02d}{:02d}".format(*parts)
        form = r.choice(FORMS)
        ents = {f.entity for f in det.scan(form % d)}
        per_form[form]["dates"] += 1
        for e in ents or {"nothing"}:
            per_form[form][e] += 1
    total: collections.Counter[str] = collections.Counter()
    for form, c in per_form.items():
        total.update(c)
        print(f"{form:22s} {dict(c)}")
    print(f"all {total['dates']}: CREDIT_CARD {total['CREDIT_CARD']}, PHONE_NUMBER {total['PHONE_NUMBER']}, "
          f"nothing {total['nothing']}")


if __name__ == "__main__":
    main()
