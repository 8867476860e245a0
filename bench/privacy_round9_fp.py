"""False positives of round 9's changes (session 29, attack-privacy9), view by view, on text without personal data.

`privacy_plain_changed.py --session 29` scans every text a change can touch with both trees in full; on a loaded
machine it did not finish in an hour. This runs only the changed pieces over the same corpus (QQP, GSM8K, MT-Bench,
the standard library, src/, docs/): each view of the new tree against the same view of the base tree on the same
normalised text, and a full scan by both trees only where normalisation itself changed. Prints the values added.

    TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 .venv/bin/python bench/privacy_round9_fp.py --src src --base /tmp/base/src
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from privacy_plain_changed import WATCH, load  # noqa: E402
from privacy_plain_findings import texts  # noqa: E402


def _email(mods: dict):  # noqa: ANN202
    return next(r for r in mods["det"].recognizers if r.name == "pattern.email")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--base", required=True)
    args = ap.parse_args()
    new, base = load(args.src), load(args.base)
    nd, bd = new["det"], base["det"]
    ne, be = _email(new), _email(base)
    chars: collections.Counter = collections.Counter()
    added: list[tuple[str, str, str, str]] = []
    norm_changed: collections.Counter = collections.Counter()

    def diff(kind: str, view: str, t: str, a: list, b: list) -> None:
        sa = {(f.entity, t[f.start:f.end]) for f in a if f.entity in WATCH}
        sb = {(f.entity, t[f.start:f.end]) for f in b if f.entity in WATCH}
        added.extend((kind, view, e, v) for e, v in sorted(sa - sb))

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
    print("characters: " + ", ".join(f"{k} {v:,}" for k, v in chars.items()))
    print("texts whose normalised form changed: " + ", ".join(f"{k} {norm_changed[k]}" for k in chars))
    per = collections.Counter((k, view) for k, view, _, _ in added)
    print("| corpus | MB | added | by view |")
    print("|---|---|---|---|")
    for k in chars:
        views = ", ".join(f"{view} {c}" for (kk, view), c in sorted(per.items()) if kk == k)
        print(f"| {k} | {chars[k] / 1e6:.1f} | {sum(c for (kk, _), c in per.items() if kk == k)} | {views or '-'} |")
    for k, view, e, v in added:
        print(f"  + {k} [{view}] {e}: {v[:80]!r}")


if __name__ == "__main__":
    main()
