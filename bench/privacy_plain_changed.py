"""The findings a detector change adds or removes on text without personal data, scanning only the texts it can
change (a full `privacy_plain_findings.py` run over its 22 M characters takes hours on a loaded machine).

Same corpus as `privacy_plain_findings.py` (QQP, GSM8K, MT-Bench judgements, the standard library, this
repository's src/ and docs/). A text is scanned by both trees when the session-25 changes can touch it: its
normalised form differs between the trees (`textnorm`), the new tree's markup view finds something in it
(`markup`), or it holds a spaced run of single characters (`spaced`, the grid test), or (session 26) its base64 / hex runs decode to text with a finding (`encoded`) or closing the gaps around a spaced
`@` makes an address (`spaced.at_gap_findings`), or (session 27) the layout view finds a value in it or it holds an
RLO override (`layout`), or (session 28) a phone/IP over layout, digits spelled as words or look-alike letters,
or an Ascii85/base85 token decodes to a finding (`layout_contact`, `digit_views`, `encoded.encoded85_findings`;
base32 and base64 of base64 are inside `encoded_findings`, new escapes change the normalised text). Elsewhere both trees run the
same code on the same normalised text, so their findings are the same.

    TIERWISE_DATA=/work/shared/data .venv/bin/python bench/privacy_plain_changed.py --src src --base /tmp/base25/src
"""

from __future__ import annotations

import argparse
import collections
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from privacy_plain_findings import ENTITIES, texts  # noqa: E402

WATCH = (*ENTITIES, "SECRET")


def load(src: str) -> dict:
    for name in [m for m in sys.modules if m == "tierwise" or m.startswith("tierwise.")]:
        del sys.modules[name]
    sys.path.insert(0, src)
    try:
        mods = {n: importlib.import_module(f"tierwise.privacy.{n}") for n in ("detect", "detect_config", "textnorm", "spaced")}
        for opt in ("markup", "encoded", "layout", "layout_contact", "digit_views", "ip_forms"):  # views later sessions added
            try:
                mods[opt] = importlib.import_module(f"tierwise.privacy.{opt}")
            except ImportError:
                mods[opt] = None
    finally:
        sys.path.remove(src)
    cfg = mods["detect_config"]
    mods["det"] = mods["detect"].Detector(cfg.DetectionConfig.model_validate({
        "classes": {"all": {"detectors": list(cfg.BUILTIN_ENTITIES)}}, "ner": {"enabled": False}}))
    return mods


def touched_29(new: dict, t: str, n_norm: str) -> bool:
    """Can session 29's changes (attack-privacy9) change this text's findings? Its normalised text changed (QP and
    UTF-7 runs, keycaps, bullets between digits: compared by the caller), or a view it changed finds something: the
    IPv4 forms, values in file names, layout over `, ; " + /`, digit words in five more languages, nested and
    mixed-case encodings, short Ascii85 tokens, or a bare ` at ` before a domain."""
    det = new["det"]
    low = n_norm.lower()
    if " at " in low:
        at_domain = next(r._AT_DOMAIN for r in det.recognizers if hasattr(r, "_AT_DOMAIN"))  # (the new tree's)
        i = low.find(" at ")
        while i >= 0:
            if at_domain.match(low, i + 4):
                return True
            i = low.find(" at ", i + 3)
    return bool(new["ip_forms"].ip_form_findings(n_norm)
                or new["layout"].underscore_findings(n_norm, det._layout_joined)
                or new["layout"].layout_findings(n_norm, det._layout_joined)
                or new["digit_views"].digit_view_findings(n_norm, det._joined)
                or new["encoded"].encoded85_findings(t, det._decoded)
                or new["encoded"].encoded_findings(n_norm, det._decoded))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--session", type=int, default=0,  # 29: round 9's views (see `touched_29`)
                    help="28: only texts session 28's changes can touch (its views, the normalised text, base64 runs "
                         "that decode to nothing as base64)")
    args = ap.parse_args()
    new, base = load(args.src), load(args.base)
    chars: collections.Counter = collections.Counter()
    scanned: collections.Counter = collections.Counter()
    added: list[tuple[str, str, str]] = []
    removed: list[tuple[str, str, str]] = []
    for kind, t in texts():
        chars[kind] += len(t)
        n_norm = new["textnorm"].normalise(t)[0]
        b_norm = base["textnorm"].normalise(t)[0]
        if args.session == 29:
            touched = n_norm != b_norm or touched_29(new, t, n_norm)
        elif args.session == 28:  # the other views are the same code in both trees
            enc = new["encoded"]
            touched = n_norm != b_norm or bool(
                new["layout_contact"].contact_layout_findings(n_norm, new["det"]._joined)
                or new["digit_views"].digit_view_findings(n_norm, new["det"]._joined)
                or enc.encoded85_findings(t, new["det"]._decoded)
                or any(enc._other_readings(c, enc._decode_b64(c)) is not None for _, c in enc._b64_runs(n_norm)))
        else:
            touched = n_norm != b_norm or new["spaced"]._RUN.search(n_norm) is not None
            if not touched and new["markup"] is not None:
                touched = bool(new["markup"].markup_findings(n_norm, new["det"]._joined))
            if not touched and new["encoded"] is not None:  # session 26: base64 / hex decoded
                touched = bool(new["encoded"].encoded_findings(n_norm, new["det"]._decoded))
            if not touched and hasattr(new["spaced"], "at_gap_findings"):  # session 26: spaced `@` gaps closed
                touched = bool(new["spaced"].at_gap_findings(n_norm, new["det"]._joined))
            if not touched and new["layout"] is not None:  # session 27: layout between groups, RLO overrides
                touched = "\u202e" in t or bool(new["layout"].layout_findings(n_norm, new["det"]._joined))
                # base64 padding before a line break, read as written
                touched = touched or ("=\n" in t and bool(new["encoded"].encoded_findings(t, new["det"]._decoded)))
            if not touched and new["layout_contact"] is not None:  # session 28: phones/IPs over layout, digits as words
                touched = bool(new["layout_contact"].contact_layout_findings(n_norm, new["det"]._joined)
                               or new["digit_views"].digit_view_findings(n_norm, new["det"]._joined)
                               or new["encoded"].encoded85_findings(t, new["det"]._decoded))
        if not touched:
            continue
        scanned[kind] += len(t)
        a = {(f.entity, t[f.start:f.end]) for f in new["det"].scan(t) if f.entity in WATCH}
        b = {(f.entity, t[f.start:f.end]) for f in base["det"].scan(t) if f.entity in WATCH}
        added += [(kind, e, v) for e, v in sorted(a - b)]
        removed += [(kind, e, v) for e, v in sorted(b - a)]
    print("characters: " + ", ".join(f"{k} {v:,}" for k, v in chars.items()))
    print("scanned by both: " + ", ".join(f"{k} {scanned[k]:,}" for k in chars))
    per_kind = collections.Counter(k for k, _, _ in added)
    per_kind_removed = collections.Counter(k for k, _, _ in removed)
    print("| corpus | MB | findings added | removed | added per MB |")
    print("|---|---|---|---|---|")
    for k in chars:
        mb = chars[k] / 1e6
        print(f"| {k} | {mb:.1f} | {per_kind[k]} | {per_kind_removed[k]} | {per_kind[k] / mb:.2f} |")
    for k, e, v in added:
        print(f"  + {k} {e}: {v[:80]!r}")
    for k, e, v in removed:
        print(f"  - {k} {e}: {v[:80]!r}")


if __name__ == "__main__":
    main()
