"""privacy16: what spreading a request's values inside words costs on real-looking text (privstream35's left item).

privstream35 made structured values (a digit or `@` and 8+ letters/digits: cards, IBANs, phones, e-mail addresses,
keys) redacted and leak-checked inside words too (`request_vocabulary.anywhere`): a value a remote model glued to
digits (`9<CREDIT_CARD_1>5`) went back in clear in the next turn. Over-redaction was not measured. Here the PII data
set's 1,500 sentences (`pii-presidio-synth`) are grouped into conversations of `--group` sentences (seeded order);
every sentence is scanned, the group's values are spread over all its sentences (ValueSpread, as the boundary does
for a request), and the redacted characters are scored per gold type (bench/privacy_detection.py's character
scores) three ways: the scan alone, spread on word boundaries (before privstream35), spread inside words (now).
A value's occurrence in another sentence is a true positive where the gold marks it (the data set repeats names,
cities and sometimes numbers) and a false one elsewhere.

    TIERWISE_DATA=/work/shared/data PYTHONPATH=src .venv/bin/python bench/privacy_spread_words.py [--group 20] [--ner]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.privacy_detection import COMPARED, TO_GOLD, Score, data_path, gold_of, tierwise_detector  # noqa: E402
from tierwise.privacy.request_vocabulary import ValueSpread  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--group", type=int, default=20)
    ap.add_argument("--ner", action="store_true", help="NER on (names, places; default: the structured layer)")
    a = ap.parse_args()
    rows = json.loads(data_path().read_text())
    random.Random(16).shuffle(rows)
    det = tierwise_detector(ner=a.ner)
    scans = [det.scan(r["full_text"]) for r in rows]
    scores = {"scan alone": Score(), "spread, word boundaries": Score(), "spread, inside words": Score()}
    changed = {"spread, word boundaries": 0, "spread, inside words": 0}
    for g in range(0, len(rows), a.group):
        idx = range(g, min(g + a.group, len(rows)))
        values = {rows[i]["full_text"][f.start:f.end]: f.entity for i in idx for f in scans[i]}
        for i in idx:
            text, gold = rows[i]["full_text"], gold_of(rows[i])

            def pred(fs: list) -> list[tuple[str, int, int]]:
                return [(TO_GOLD.get(f.entity, f.entity), f.start, f.end) for f in fs]

            scores["scan alone"].add(text, gold, pred(scans[i]))
            for name, inside in (("spread, word boundaries", False), ("spread, inside words", True)):
                spread = ValueSpread(values)
                if not inside:
                    spread._anywhere = [False] * len(spread.values)
                got = spread.add(text, scans[i])
                changed[name] += sorted((f.start, f.end) for f in got) != sorted((f.start, f.end) for f in scans[i])
                scores[name].add(text, gold, pred(got))
    print(f"{len(rows)} sentences in groups of {a.group}; NER {'on' if a.ner else 'off'}; sentences whose redaction "
          f"the spread changed: word boundaries {changed['spread, word boundaries']}, inside words "
          f"{changed['spread, inside words']}\n")
    names = list(scores)
    print("| entity | gold spans | " + " | ".join(f"{n}: P / R / **F2**" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for ent in COMPARED:
        cells = []
        for n in names:
            p, r, f2, _ = scores[n].prf(ent)
            cells.append(f"{p:.3f} / {r:.3f} / **{f2:.3f}**")
        print(f"| {ent} | {scores['scan alone'].spans.get(ent, 0)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
