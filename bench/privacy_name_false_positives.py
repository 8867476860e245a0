"""Name findings (PERSON, ORGANIZATION, GPE, NRP) on characters of no gold span of the PII data set
(`pii-presidio-synth`), by shape (sentence-initial or not, one word or more), with the most common words; and
how many sentence-initial one-word name findings are right (what a rule dropping them would cost in recall).
Uses bench/privacy_detection.py's data and detector (NER on).

    PYTHONPATH=src TIERWISE_DATA=/work/shared/data .venv/bin/python bench/privacy_name_false_positives.py
"""

import collections
import importlib.util
import json
import re
from pathlib import Path

spec = importlib.util.spec_from_file_location("pd", Path(__file__).resolve().parent / "privacy_detection.py")
pd = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(pd)  # type: ignore[union-attr]

NAMES = {"PERSON", "ORGANIZATION", "GPE", "NRP"}
SENTENCE_START = re.compile(r"[.!?:\n]\s*$")


def main() -> None:
    rows = json.loads(pd.data_path().read_text())
    det = pd.tierwise_detector(ner=True)
    total: collections.Counter[str] = collections.Counter()
    wrong: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    initial_right: dict[str, list[str]] = collections.defaultdict(list)
    for row in rows:
        text, gold = row["full_text"], pd.gold_of(row)
        for f in det.scan(text):
            ent = pd.TO_GOLD.get(f.entity, f.entity)
            if ent not in NAMES:
                continue
            total[ent] += 1
            word = text[f.start:f.end]
            initial = f.start == 0 or SENTENCE_START.search(text[:f.start]) is not None
            if not any(a < f.end and f.start < b for _, a, b in gold):
                shape = ("sentence-initial " if initial else "") + ("one word" if " " not in word else "several")
                wrong[(ent, shape)].append(word)
            elif initial and " " not in word and any(g == ent and a < f.end and f.start < b for g, a, b in gold):
                initial_right[ent].append(word)
    print(f"{len(rows)} sentences; name findings: {dict(total)}; on no gold span: "
          f"{sum(map(len, wrong.values()))}")
    print("| entity | shape | findings on no gold span | most common |\n|---|---|---|---|")
    for (ent, shape), words in sorted(wrong.items(), key=lambda kv: -len(kv[1])):
        common = ", ".join(f"{w!r} {n}" for w, n in collections.Counter(words).most_common(4))
        print(f"| {ent} | {shape} | {len(words)} | {common} |")
    print("sentence-initial one-word name findings that are right:",
          {e: len(w) for e, w in initial_right.items()})


if __name__ == "__main__":
    main()
