"""Phone numbers beside operators with no phone word (session 30, review30f): a generated set of valid numbers in
list, table, key=value and name contexts, recall per context; and `--plain`: the phone recognizer's findings on QQP and
GSM8K (text without personal data). PYTHONPATH=src (or a base tree's src) .venv/bin/python bench/privacy_phone_contexts.py"""

import collections
import random
import sys

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DetectionConfig

det = Detector(
    DetectionConfig.model_validate(
        {"classes": {"all": {"detectors": list(BUILTIN_ENTITIES)}}, "ner": {"enabled": False}}
    )
)
rng = random.Random(30)
NPA = ["415", "212", "617", "312", "303", "512", "646", "718", "206", "404"]


def us():
    return rng.choice(NPA), str(rng.randint(201, 989)), str(rng.randint(1000, 9999))


FORMATS = {
    "AAA-EEE-NNNN": lambda: "-".join(us()),
    "AAA/EEE-NNNN": lambda: (lambda a, e, n: f"{a}/{e}-{n}")(*us()),
    "AAA.EEE.NNNN": lambda: ".".join(us()),
    "DE 089/NNNNNNN": lambda: f"0{rng.choice(['89', '30', '40', '69'])}/{rng.randint(2000000, 9999999)}",
    "DE 1NN-NNNNNNNN": lambda: (
        f"{rng.choice(['151', '160', '171', '176'])}-{rng.randint(10000000, 99999999)}"
    ),
}
CONTEXTS = [
    "{p}",
    "- {p}",
    "* {p}",
    "+ {p}",
    "**{p}**",
    "Alex {p}",
    "Max {p}",
    "Bob Cox {p}",
    "Jane ({p})",
    "({p})",
    "{p} / {q}",
    "{p} - {q}",
    "{p} + {q}",
    "Jane={p}",
    "emergency={p}",
    "| Jane | {p} |",
    '{{"Jane": "{p}"}}',
    "1. {p}",
    "Jane, {p}",
    "{p} * preferred",
    "Jane Fox: {p}",
]
hits = collections.Counter()
tot = collections.Counter()
for ctx in CONTEXTS:
    for f in FORMATS.values():
        for _ in range(6):
            p, q = f(), f()
            t = ctx.format(p=p, q=q)
            ok = any(
                x.entity == "PHONE_NUMBER" and x.start <= t.index(p) and x.end >= t.index(p) + len(p) - 1
                for x in det.scan(t)
            )
            hits[ctx] += ok
            tot[ctx] += 1
            hits["ALL"] += ok
            tot["ALL"] += 1
for k in tot:
    print(f"{k!r:24} {hits[k]}/{tot[k]}")

if "--plain" in sys.argv:
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from privacy_plain_findings import texts

    from tierwise.privacy.recognizers.contact import PhoneRecognizer

    rec = PhoneRecognizer(["US", "GB", "DE", "FR", "SE"])
    plain = collections.Counter(name for name, t in texts() if name in ("gsm8k", "qqp") for _ in rec.find(t))
    print("phone findings on text without personal data:", dict(plain))
