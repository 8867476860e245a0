"""Structured findings in text that holds no personal data: what a detector change adds there is false positives.

Texts: the QQP questions (`qqp-duplicates/pairs.jsonl`), GSM8K questions and answers and the MT-Bench
judgements of `routellm-gpt4-mixtral`, and code: the Python standard library's modules (no tests, no
site-packages), this repository's src/ and docs/. Every text is scanned with the structured recognizers (NER off)
in pieces of at most 50,000 characters; the counts per entity and, with `--show`, the new findings' texts.

    TIERWISE_DATA=/work/shared/data .venv/bin/python bench/privacy_plain_findings.py --src src [--src /tmp/base/src]
    ... --src /tmp/base/src --dump base.json; later: ... --src src --against base.json   (one tree per run)
    ... --only qqp --only gsm8k --only mt-bench --only code     (some corpora: src/ and docs/ are the slow part)

With two `--src` trees the second is the baseline, and the findings only one of them makes are listed.
"""

from __future__ import annotations

import argparse
import collections
import csv
import importlib
import json
import os
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTITIES = ("CREDIT_CARD", "IBAN_CODE", "US_SSN", "PHONE_NUMBER", "EMAIL_ADDRESS", "IP_ADDRESS", "URL_CREDENTIALS")
PIECE = 50_000


def texts(kinds: frozenset[str] = frozenset()) -> Iterator[tuple[str, str]]:
    """(corpus, text) of every corpus, or only those named in `kinds` (qqp, gsm8k, mt-bench, code, src, docs)."""
    for kind, t in _texts(kinds):
        if not kinds or kind in kinds:
            yield kind, t


def _texts(kinds: frozenset[str]) -> Iterator[tuple[str, str]]:
    data = Path(os.environ.get("TIERWISE_DATA") or ROOT.parent / "shared" / "data")
    for line in (data / "qqp-duplicates" / "pairs.jsonl").read_text().splitlines():
        row = json.loads(line)
        yield "qqp", row["text_a"] + "\n" + row["text_b"]
    rl = data / "routellm-gpt4-mixtral"
    for line in (rl / "gsm8k" / "test.jsonl").read_text().splitlines():
        row = json.loads(line)
        yield "gsm8k", "\n".join(str(v) for v in row.values() if isinstance(v, str))
    with (rl / "commercial_mt_bench" / "gpt-4_single.jsonl").open() as f:
        for line in f:
            row = json.loads(line)
            yield "mt-bench", "\n".join(str(v) for v in row.values() if isinstance(v, str))
    csv.field_size_limit(1 << 30)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for root, kind, pattern in ((stdlib, "code", "*.py"), (ROOT / "src", "src", "*.py"), (ROOT / "docs", "docs", "*.md")):
        if kinds and kind not in kinds:
            continue
        for p in sorted(root.rglob(pattern)):
            if {"site-packages", "test", "tests", "idlelib"} & set(p.parts):
                continue
            try:
                t = p.read_text("utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            for i in range(0, len(t), PIECE):
                yield kind, t[i:i + PIECE]


def detector(src: str):  # noqa: ANN201
    for name in [m for m in sys.modules if m == "tierwise" or m.startswith("tierwise.")]:
        del sys.modules[name]
    sys.path.insert(0, src)
    try:
        detect = importlib.import_module("tierwise.privacy.detect")
        cfg = importlib.import_module("tierwise.privacy.detect_config")
    finally:
        sys.path.remove(src)
    return detect.Detector(cfg.DetectionConfig.model_validate({
        "classes": {"all": {"detectors": list(cfg.BUILTIN_ENTITIES)}}, "ner": {"enabled": False}}))


def run(src: str, kinds: frozenset[str] = frozenset()) -> tuple[dict[str, int], collections.Counter, set[tuple[int, str, str]]]:
    det = detector(src)
    chars: dict[str, int] = collections.Counter()
    count: collections.Counter = collections.Counter()
    seen: set[tuple[int, str, str]] = set()
    for k, (kind, t) in enumerate(texts(kinds)):
        chars[kind] += len(t)
        for f in det.scan(t):
            if f.entity in ENTITIES:
                count[(kind, f.entity)] += 1
                seen.add((k, f.entity, t[f.start:f.end]))
    return chars, count, seen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", action="append", required=True, help="a tree's src/ (a second one: the baseline)")
    ap.add_argument("--show", type=int, default=20, help="list at most this many findings only one tree makes")
    ap.add_argument("--dump", help="write the first tree's results to this JSON file (to compare later with --against)")
    ap.add_argument("--against", help="a --dump file: the baseline, in place of a second --src")
    ap.add_argument("--only", action="append", default=[], help="scan only this corpus (qqp, gsm8k, mt-bench, code, "
                    "src, docs; repeatable)")
    args = ap.parse_args()
    results = [run(s, frozenset(args.only)) for s in args.src]
    if args.dump:
        chars0, count0, seen0 = results[0]
        Path(args.dump).write_text(json.dumps({"chars": chars0, "count": [[k, e, n] for (k, e), n in count0.items()],
                                               "seen": sorted(seen0)}))
    if args.against:
        got = json.loads(Path(args.against).read_text())
        count1 = collections.Counter({(k, e): n for k, e, n in got["count"]})
        results.append((got["chars"], count1, {tuple(x) for x in got["seen"]}))
        args.src.append(args.against)
    chars = results[0][0]
    print("characters: " + ", ".join(f"{k} {v:,}" for k, v in chars.items()))
    kinds = list(chars)
    print("| tree | entity | " + " | ".join(kinds) + " |")
    print("|---" * (len(kinds) + 2) + "|")
    for src, (_, count, _) in zip(args.src, results, strict=True):
        for e in ENTITIES:
            row = [count[(k, e)] for k in kinds]
            if any(row):
                print(f"| {src} | {e} | " + " | ".join(str(x) for x in row) + " |")
    if len(results) == 2:
        a, b = results[0][2], results[1][2]
        print(f"\nonly in {args.src[0]}: {len(a - b)}; only in {args.src[1]}: {len(b - a)}")
        for _, e, t in sorted(a - b)[:args.show]:
            print(f"  + {e}: {t[:80]!r}")
        for _, e, t in sorted(b - a)[:args.show]:
            print(f"  - {e}: {t[:80]!r}")


if __name__ == "__main__":
    main()
