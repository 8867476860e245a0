"""A local judge trained on the frontier judge's verdicts: agreement on held-out verdicts.

    TIERWISE_DATA=../shared/data OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/local_judge.py

Verdicts: GSM8K (the only benchmark of the three whose local answers are recorded in full), the verdict on
Mixtral's answer being the same as in bench/learning_loop.py (accepted when it is as good as GPT-4's:
same correctness). 5-fold cross-validation by question: the judge never sees a held-out question.
Also the same with only the first N verdicts for training (what a route has after N judged answers), and
the pairwise judge of a shadow pair (`answers_agree`: do both answers end on the same number?).
"""

from __future__ import annotations

import argparse

import numpy as np

from tierwise.evaluation.cv import group_folds
from tierwise.evaluation.loaders import load_benchmark
from tierwise.learning.local_judge import LocalJudge, agreement, answers_agree


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    d = load_benchmark("gsm8k")
    assert d.weak_responses is not None
    acc = (d.weak >= d.strong).astype(bool)
    pred = np.zeros(len(d), dtype=bool)
    small = {200: np.zeros(len(d), dtype=bool), 500: np.zeros(len(d), dtype=bool)}
    for test in group_folds(d, args.folds, seed=0):
        train = np.setdiff1d(np.arange(len(d)), test)
        j = LocalJudge().fit([d.prompts[i] for i in train], [d.weak_responses[i] for i in train], acc[train])
        pred[test] = j.predict([d.prompts[i] for i in test], [d.weak_responses[i] for i in test])
        for n, arr in small.items():
            sub = train[:n]
            js = LocalJudge().fit([d.prompts[i] for i in sub], [d.weak_responses[i] for i in sub], acc[sub])
            arr[test] = js.predict([d.prompts[i] for i in test], [d.weak_responses[i] for i in test])
    print(f"GSM8K, {len(d)} verdicts, {acc.mean() * 100:.1f}% accepted; {args.folds}-fold CV by question")
    print("| local judge trained on | accuracy | Cohen's kappa |")
    print("|---|---|---|")
    for label, p in ((f"{len(d) * (args.folds - 1) // args.folds} verdicts (all other folds)", pred),
                     ("the first 500 of them", small[500]), ("the first 200 of them", small[200])):
        a = agreement(acc, p)
        print(f"| {label} | {a.accuracy * 100:.1f}% | {a.kappa:.3f} |")
    assert d.strong_responses is not None
    pair = [answers_agree(w, s) for w, s in zip(d.weak_responses, d.strong_responses, strict=True)]
    has = np.array([p is not None for p in pair])
    a = agreement(acc[has], np.array([bool(p) for p in pair])[has])
    print(f"| nothing: shadow pairs, both answers end on the same number ({has.sum()} pairs) | "
          f"{a.accuracy * 100:.1f}% | {a.kappa:.3f} |")
    maj = agreement(acc, np.ones(len(d), dtype=bool))
    print(f"| (always accept) | {maj.accuracy * 100:.1f}% | {maj.kappa:.3f} |")


if __name__ == "__main__":
    main()
