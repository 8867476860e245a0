"""False positives of round 9's changes (session 29, attack-privacy9), view by view, on text without personal data.

`privacy_plain_changed.py --session 29` scans every text a change can touch with both trees in full; on a loaded
machine it did not finish in an hour. This runs only the changed pieces over the same corpus (QQP, GSM8K, MT-Bench,
the standard library, src/, docs/): each view of the new tree against the same view of the base tree on the same
normalised text, and a full scan by both trees only where normalisation itself changed. Prints the values added.

    TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 .venv/bin/python bench/privacy_round9_fp.py --src src --base /tmp/base/src
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from privacy_plain_findings import texts  # noqa: E402
from privacy_view_fp import Added, report, trees  # noqa: E402


def _email(mods: dict):  # noqa: ANN202
    return next(r for r in mods["det"].recognizers if r.name == "pattern.email")


def main() -> None:
    new, base = trees()
    nd, bd = new["det"], base["det"]
    ne, be = _email(new), _email(base)
    chars: collections.Counter = collections.Counter()
    added = Added()
    diff = added.diff
    norm_changed: collections.Counter = collections.Counter()

    for kind, t in texts():
        chars[kind] += len(t)
        n = new["textnorm"].normalise(t)[0]
        if n != base["textnorm"].normalise(t)[0]:
            norm_changed[kind] += 1
            diff(kind, "textnorm (full scan)", t, nd.scan(t), bd.scan(t))
            continue
        diff(kind, "ip_forms", n, new["ip_forms"].ip_form_findings(n), [])
        diff(kind, "underscore", n, new["layout"].underscore_findings(n, nd._layout_joined), [])
        diff(kind, "layout", n, new["layout"].layout_findings(n, nd._layout_joined),
             base["layout"].layout_findings(n, bd._layout_joined))
        diff(kind, "digit_views", n, new["digit_views"].digit_view_findings(n, nd._joined),
             base["digit_views"].digit_view_findings(n, bd._joined))
        diff(kind, "encoded", n, new["encoded"].encoded_findings(n, nd._decoded),
             base["encoded"].encoded_findings(n, bd._decoded))
        diff(kind, "encoded85", t, new["encoded"].encoded85_findings(t, nd._decoded),
             base["encoded"].encoded85_findings(t, bd._decoded))
        diff(kind, "email", n, list(ne.find(n)), list(be.find(n)))
    report(chars, added, ("texts whose normalised form changed: " + ", ".join(f"{k} {norm_changed[k]}" for k in chars),),
           per_mb=False)

if __name__ == "__main__":
    main()
