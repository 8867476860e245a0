"""IBANs of every country in `checksums.IBAN_LENGTHS`, written as people write them: recall per written form.

For each country, 20 valid IBANs (random BBAN digits, true check digits), each in the forms below, scanned alone and
after `my IBAN is `; a form counts as found when one IBAN_CODE finding covers the whole value. One tree per run:

    PYTHONPATH=src .venv/bin/python bench/privacy_iban_forms.py
    PYTHONPATH=/other/tree/src .venv/bin/python bench/privacy_iban_forms.py
"""

from __future__ import annotations

import random

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import DetectionConfig
from tierwise.privacy.recognizers.checksums import IBAN_LENGTHS


def iban(cc: str, rng: random.Random) -> str:
    bban = "".join(rng.choice("0123456789") for _ in range(IBAN_LENGTHS[cc] - 4))
    num = int("".join(str(int(c, 36)) for c in bban + cc + "00"))
    return f"{cc}{98 - num % 97:02d}{bban}"


def groups(s: str, n: int, sep: str) -> str:
    return sep.join(s[i:i + n] for i in range(0, len(s), n))


FORMS = {
    "compact": lambda s: s,
    "4s space": lambda s: groups(s, 4, " "),
    "4s dash": lambda s: groups(s, 4, "-"),
    "4s dot": lambda s: groups(s, 4, "."),
    "4s two spaces": lambda s: groups(s, 4, "  "),
    "3s space": lambda s: groups(s, 3, " "),
    "country apart": lambda s: s[:2] + " " + s[2:4] + " " + groups(s[4:], 4, " "),
    "country apart, 3s": lambda s: s[:2] + " " + s[2:4] + " " + groups(s[4:], 3, " "),
    "lower case": lambda s: groups(s.lower(), 4, " "),
    "O for 0": lambda s: s[:4] + groups(s[4:].replace("0", "O"), 4, " "),
}


def main() -> None:
    rng = random.Random(30)
    det = Detector(DetectionConfig.model_validate({"classes": {"pii": {}}, "ner": {"enabled": False}}))
    hit = dict.fromkeys(FORMS, 0)
    total = 0
    for cc in sorted(IBAN_LENGTHS):
        for _ in range(20):
            value = iban(cc, rng)
            total += 2
            for name, form in FORMS.items():
                written = form(value)
                for prefix in ("", "my IBAN is "):
                    text = prefix + written
                    a = len(prefix)
                    if any(f.entity == "IBAN_CODE" and f.start <= a and f.end >= len(text) for f in det.scan(text)):
                        hit[name] += 1
    print(f"{len(IBAN_LENGTHS)} countries, {total} values per form")
    print("| form | recall |")
    print("|---|---|")
    for name in FORMS:
        print(f"| {name} | {hit[name] / total:.3f} |")


if __name__ == "__main__":
    main()
