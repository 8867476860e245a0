"""False positives of privacy round 10's changes (session 30, attack-privacy10), view by view, on text without
personal data: the card and IBAN recognizers (glued cards, IBANs split anywhere, `O` for 0), the digit views (`|`
for 1, Portuguese and Dutch digit words) and the encoded view (four levels), each against the base tree's same
recognizer or view on the same normalised text (the corpus of `privacy_plain_findings.py`: QQP, GSM8K, MT-Bench, the
standard library, src/, docs/). Prints the values added, and per corpus the added findings per MB.

    TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 .venv/bin/python bench/privacy_round10_fp.py --src src --base /tmp/base/src
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from privacy_plain_findings import texts  # noqa: E402
from privacy_view_fp import Added, report, trees  # noqa: E402


def _rec(mods: dict, name: str):  # noqa: ANN202
    return next(r for r in mods["det"].recognizers if r.name == name)


def main() -> None:
    new, base = trees()
    nd, bd = new["det"], base["det"]
    pre_new = sys.modules["tierwise.privacy.recognizers.prescan"].Prescan  # the last tree loaded: base
    chars: collections.Counter = collections.Counter()
    added = Added()
    diff = added.diff

    for kind, t in texts():
        chars[kind] += len(t)
        n = new["textnorm"].normalise(t)[0]
        for name in ("checksum.card", "checksum.iban"):
            diff(kind, name, n, list(_rec(new, name).find(n)), list(_rec(base, name).find(n, pre_new(n))))
        diff(kind, "digit_views", n, new["digit_views"].digit_view_findings(n, nd._joined),
             base["digit_views"].digit_view_findings(n, bd._joined))
        diff(kind, "encoded", n, new["encoded"].encoded_findings(n, nd._decoded),
             base["encoded"].encoded_findings(n, bd._decoded))
    report(chars, added)

if __name__ == "__main__":
    main()
