"""How far can a difficulty signal take GSM8K pre-routing? Routes the decontaminated GSM8K
questions by signals no pre-router has (the reference solution's number of calculator steps
and its length, the size of the reference answer, each model's own answer length) next to
the prompt-length baseline, and prints APGR for each, plus both models' accuracy by the
number of steps. With the `embeddings` extra it also learns on text no pre-router has: a ridge
regression of the gain on the sentence embedding of the reference solution, and of each model's
answer, beside the same regression on the prompt (5-fold CV by question, alpha by leave-one-out
inside each training split). A yardstick for learned routers, not a router.

    .venv/bin/python bench/gsm8k_difficulty.py
"""

from __future__ import annotations

import json
import math

import numpy as np

from tierwise.evaluation.cv import group_folds
from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.evaluation.loaders import ROUTELLM, data_root, load_gsm8k
from tierwise.evaluation.metrics import apgr, routing_curve
from tierwise.routers.features import embedding_available


def learned_on_text(ds: OutcomeDataset, texts: dict[str, list[str]]) -> None:
    """APGR of a ridge regression of the gain on the embedding of each text, out of fold."""
    from sklearn.linear_model import RidgeCV

    from tierwise.routers.features import Embedder

    enc = Embedder()
    vectors = {name: enc.encode(t) for name, t in texts.items()}
    vectors["prompt + reference solution"] = np.hstack([vectors["prompt"], vectors["reference solution"]])
    folds = group_folds(ds, 5, 0)
    print("\n| ridge on the embedding of (5-fold CV) | APGR |\n|---|---|")
    for name, x in vectors.items():
        score = np.zeros(len(ds))
        for test in folds:
            train = np.setdiff1d(np.arange(len(ds)), test)
            score[test] = RidgeCV(alphas=(1.0, 3.0, 10.0, 30.0, 100.0)).fit(x[train], ds.gain[train]).predict(x[test])
        print(f"| {name} | {apgr(routing_curve(score, ds.strong, ds.weak)):.3f} |")


def main() -> None:
    root = data_root()
    if root is None:
        raise SystemExit(f"{ROUTELLM} not found: set TIERWISE_DATA to the folder holding it")
    ds = load_gsm8k(root)
    reference: dict[str, str] = {}
    with (root / ROUTELLM / "gsm8k" / "test.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            item = json.loads(line)
            reference[item["question"].strip()] = item["answer"]
    solutions = [reference[p.strip()] for p in ds.prompts]  # every decontaminated prompt has one

    def answer_size(solution: str) -> float:
        try:
            return math.log1p(abs(float(solution.rsplit("####", 1)[-1].strip().replace(",", ""))))
        except ValueError:
            return 0.0

    steps = np.array([s.count("<<") for s in solutions])
    signals = {
        "prompt length (baseline)": [len(p) for p in ds.prompts],
        "reference solution: calculator steps": steps,
        "reference solution: length": [len(s) for s in solutions],
        "reference answer: log size": [answer_size(s) for s in solutions],
        "Mixtral's own answer: length": [len(r) for r in ds.weak_responses or []],
        "GPT-4's own answer: length": [len(r) for r in ds.strong_responses or []],
    }
    # Ties are broken by a fixed tiny jitter so the 10-quantile thresholds stay distinct.
    jitter = np.random.default_rng(0).random(len(ds.prompts)) * 1e-6
    print(f"GSM8K, {len(ds.prompts)} questions (contaminated dropped)\n")
    print("| signal (longer / larger -> strong model) | APGR |\n|---|---|")
    for name, values in signals.items():
        score = np.asarray(values, dtype=float) + jitter
        print(f"| {name} | {apgr(routing_curve(score, ds.strong, ds.weak)):.3f} |")
    print("\n| calculator steps | questions | Mixtral correct | GPT-4 correct |\n|---|---|---|---|")
    for k in range(int(steps.min()), int(steps.max()) + 1):
        m = steps == k
        if m.sum() >= 20:
            print(f"| {k} | {m.sum()} | {ds.weak[m].mean():.1%} | {ds.strong[m].mean():.1%} |")
    if embedding_available():
        learned_on_text(ds, {"prompt": ds.prompts, "reference solution": solutions,
                             "GPT-4's answer": ds.strong_responses or [], "Mixtral's answer": ds.weak_responses or []})
    else:
        print("\n(embeddings extra not installed: the learned rows are skipped)")


if __name__ == "__main__":
    main()
