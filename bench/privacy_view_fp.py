"""Shared by the privacy rounds' false-positive benches (`privacy_round9_fp.py`, `privacy_round10_fp.py`): the two
trees named on the command line, the values a view of the new tree finds that the base tree's same view does not,
and the report per corpus."""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from privacy_plain_changed import WATCH, load  # noqa: E402


def trees() -> tuple[dict, dict]:
    """The new (`--src`) and the base (`--base`) tree's privacy modules, loaded in that order."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--base", required=True)
    args = ap.parse_args()
    return load(args.src), load(args.base)


class Added(list):
    """(corpus, view, entity, value) of each value the new tree's view adds."""

    def diff(self, kind: str, view: str, t: str, a: list, b: list) -> None:
        sa = {(f.entity, t[f.start:f.end]) for f in a if f.entity in WATCH}
        sb = {(f.entity, t[f.start:f.end]) for f in b if f.entity in WATCH}
        self.extend((kind, view, e, v) for e, v in sorted(sa - sb))


def report(chars: collections.Counter, added: Added, notes: tuple[str, ...] = (), per_mb: bool = True) -> None:
    """The characters read per corpus, `notes`, a table of the values added per corpus (and per MB), then each."""
    print("characters: " + ", ".join(f"{k} {v:,}" for k, v in chars.items()))
    for line in notes:
        print(line)
    per = collections.Counter((k, view) for k, view, _, _ in added)
    print("| corpus | MB | added | per MB | by view |" if per_mb else "| corpus | MB | added | by view |")
    print("|---|---|---|---|---|" if per_mb else "|---|---|---|---|")
    for k in chars:
        views = ", ".join(f"{view} {c}" for (kk, view), c in sorted(per.items()) if kk == k)
        total = sum(c for (kk, _), c in per.items() if kk == k)
        rate = f" {total / (chars[k] / 1e6):.2f} |" if per_mb else ""
        print(f"| {k} | {chars[k] / 1e6:.1f} | {total} |{rate} {views or '-'} |")
    for k, view, e, v in added:
        print(f"  + {k} [{view}] {e}: {v[:80]!r}")
