"""Valid IBANs whose format has free characters, with letter-heavy or digit account parts (session 30, review30f):
found per 50. PYTHONPATH=src (or a base tree's src) .venv/bin/python bench/privacy_iban_letters.py"""

import random
import re
import string

from tierwise.privacy.recognizers.ids import IbanRecognizer

r = IbanRecognizer()
rng = random.Random(7)
SPEC = {
    "QA": "4!a21!c",
    "KW": "4!a22!c",
    "MT": "4!a5!n18!c",
    "PS": "4!a21!c",
    "BH": "4!a14!c",
    "JO": "4!a4!n18!c",
    "GI": "4!a15!c",
    "LV": "4!a13!c",
    "RO": "4!a16!c",
    "PK": "4!a16!c",
    "IT": "1!a5!n5!n12!c",
    "CY": "3!n5!n16!c",
    "LB": "4!n20!c",
    "AZ": "4!a20!c",
    "GB": "4!a6!n8!n",
    "NL": "4!a10!n",
    "SC": "4!a2!n2!n16!n3!a",
    "LC": "4!a24!c",
}


def bban(spec, cpool):
    out = ""
    for n, k in re.findall(r"(\d+)!([anc])", spec):
        pool = {"a": string.ascii_uppercase, "n": string.digits, "c": cpool}[k]
        out += "".join(rng.choice(pool) for _ in range(int(n)))
    return out


def make(cc, b):
    num = int("".join(str(int(c, 36)) for c in b + cc + "00"))
    return f"{cc}{98 - num % 97:02d}{b}"


for label, pool in (("c uniform alnum", string.ascii_uppercase + string.digits), ("c digits", string.digits)):
    row = []
    for cc, spec in SPEC.items():
        ok = sum(
            any(f.entity == "IBAN_CODE" for f in r.find("IBAN " + make(cc, bban(spec, pool))))
            for _ in range(50)
        )
        row.append(f"{cc} {ok}/50")
    print(label, " ".join(row))
