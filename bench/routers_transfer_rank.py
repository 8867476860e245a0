"""Rank-averaged transfer scorers (issue 22, session 15): leave-one-benchmark-out (LOBO) APGR on RouteLLM's
GPT-4 / Mixtral data for a fixed grid of member sets, each with its in-domain 5-fold CV on MMLU and GSM8K,
and an honest (nested) choice among the grid that reads only the training benchmarks.

    TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 .venv/bin/python bench/routers_transfer_rank.py --ci 300

Members (every training benchmark weighted equally; "fe" = the target centred within each training
benchmark, so a member learns what makes a question harder *within* a benchmark, not which benchmark is harder):
- `wf-logit`: logistic regression of "the weak model fails" on hashed TF-IDF (C 1);
- `gain-ridge-fe`: ridge (alpha 30) of the gain strong − weak on the same features;
- `mix-ridge-fe`: ridge of (weak fails + gain) / 2: 1 if only the strong model is right, ½ if neither is;
- `shape-gain-fe` / `shape-wf-fe`: ridge (alpha 10) of the gain / weak failure on eleven standardised
  log-counts of domain-general question shape (words, sentences, words per sentence, numbers, distinct
  numbers, log of the largest number, digits, decimals, maths symbols, question marks, negations) — no words,
  no answer-option or benchmark-specific cue features.
A blend is the mean of its members' ranks within the scored set (the threshold is re-fitted to the target
frontier share on the traffic, so only the ranking matters). `words` (the prompt's word count) is a
diagnostic row, not a member: prompt length routes below random on the issue's 14-domain held-out questions.

The nested choice: for a held-out benchmark, each blend of the grid is fitted on one of the two training
benchmarks and scored on the other, both ways; the blend with the best worst of the two inner APGRs is
used (ties: the first in the grid). It never reads the held-out benchmark.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.sparse import vstack
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression, Ridge

from tierwise.evaluation.baselines import random_scores
from tierwise.evaluation.cv import group_folds
from tierwise.evaluation.dataset import unit_scale
from tierwise.evaluation.loaders import load_benchmark
from tierwise.evaluation.metrics import apgr, bootstrap_apgr, routing_curve
from tierwise.routers.features import SHAPE_NAMES, HashingTfidf, shape_features
from tierwise.routers.stack import _counts, _idf, _weigh

NAMES = ("mmlu", "gsm8k", "mt-bench")
SHAPE = ("words", "sentences", "words_per_sentence", "numbers", "distinct_numbers", "log_max_number", "digits",
         "decimals", "math_symbols", "questions", "negation")
GRID = (
    ("wf-logit", "gain-ridge-fe", "shape-gain-fe"),
    ("wf-logit", "gain-ridge-fe"),
    ("wf-logit", "shape-gain-fe"),
    ("gain-ridge-fe", "shape-gain-fe"),
    ("mix-ridge-fe", "shape-gain-fe"),
    ("wf-logit", "gain-ridge-fe", "shape-gain-fe", "shape-wf-fe"),
    ("wf-logit",),
    ("gain-ridge-fe",),
    ("mix-ridge-fe",),
    ("shape-gain-fe",),
    ("shape-wf-fe",),
)


class Part:
    """One benchmark (or a fold of one): TF-IDF counts, shape log-counts and unit-scale outcomes."""

    def __init__(self, counts, shape: np.ndarray, strong: np.ndarray, weak: np.ndarray, ustrong: np.ndarray,
                 uweak: np.ndarray) -> None:
        self.counts, self.shape = counts, shape
        self.strong, self.weak, self.ustrong, self.uweak = strong, weak, ustrong, uweak

    def take(self, ix: np.ndarray) -> Part:
        return Part(self.counts[ix], self.shape[ix], *(a[ix] for a in (self.strong, self.weak, self.ustrong,
                                                                        self.uweak)))


def members(train: list[Part], test: Part, power: float = 1.0) -> dict[str, np.ndarray]:
    """Every member fitted on `train` and scored on `test`; a part of n queries weighs n^(1 − power) in all
    (power 1: each part equally; 0.5: in proportion to the square root of its size)."""
    idf = _idf(vstack([p.counts for p in train]).tocsr())
    x = _weigh(vstack([p.counts for p in train]).tocsr(), idf)
    xt = _weigh(test.counts, idf)
    w = np.concatenate([np.full(len(p.weak), float(len(p.weak)) ** -power) for p in train])
    w *= len(w) / w.sum()

    def cat(f, centre: bool) -> np.ndarray:
        return np.concatenate([f(p) - (f(p).mean() if centre else 0.0) for p in train])

    wf, gain = (lambda p: 1.0 - p.uweak), (lambda p: p.ustrong - p.uweak)
    out: dict[str, np.ndarray] = {}
    fails = cat(wf, False) > 0.5
    if fails.min() != fails.max():
        out["wf-logit"] = xt @ LogisticRegression(C=1.0, max_iter=3000).fit(x, fails, sample_weight=w).coef_[0]
    else:
        out["wf-logit"] = np.zeros(xt.shape[0])
    out["gain-ridge-fe"] = Ridge(alpha=30).fit(x, cat(gain, True), sample_weight=w).predict(xt)
    out["mix-ridge-fe"] = Ridge(alpha=30).fit(x, cat(lambda p: (wf(p) + gain(p)) / 2, True), sample_weight=w).predict(xt)
    s = np.vstack([p.shape for p in train])
    mu, sd = s.mean(0), s.std(0)
    sd[sd == 0] = 1.0
    for name, f in (("shape-gain-fe", gain), ("shape-wf-fe", wf)):
        out[name] = Ridge(alpha=10).fit((s - mu) / sd, cat(f, True), sample_weight=w).predict((test.shape - mu) / sd)
    return out


def blend(m: dict[str, np.ndarray], combo: tuple[str, ...]) -> np.ndarray:
    return np.mean([rankdata(m[k]) / len(m[k]) for k in combo], axis=0)


def _apgr(s: np.ndarray, p: Part) -> float:
    if np.ptp(s) == 0:
        return 0.5
    return apgr(routing_curve(s, p.strong, p.weak))


def cell(s: np.ndarray, p: Part, rounds: int) -> str:
    a = _apgr(s, p)
    if not rounds:
        return f"{a:.3f}"
    ci = bootstrap_apgr(s, p.strong, p.weak, rounds=rounds)
    rnd = np.random.default_rng(0).random(len(s))
    lead = bootstrap_apgr(s, p.strong, p.weak, against=rnd, rounds=rounds)
    star = "" if lead.low > 0 else (" ↓" if lead.high < 0 else " ~")
    return f"{a:.3f} ({ci.low:.3f}–{ci.high:.3f}){star}"


def label(combo: tuple[str, ...]) -> str:
    return " + ".join(combo)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ci", type=int, default=300)
    ap.add_argument("--no-in-domain", action="store_true")
    ap.add_argument("--power", type=float, default=1.0,
                    help="a training benchmark of n queries weighs n^(1 − power) in all (1: equally)")
    args = ap.parse_args()
    tf = HashingTfidf(1 << 18)
    cols = [SHAPE_NAMES.index(k) for k in SHAPE]
    parts, raw = {}, {}
    for n in NAMES:
        d = raw[n] = load_benchmark(n)
        u = unit_scale(d)
        shape = np.log1p(np.maximum(np.stack([shape_features(p) for p in d.prompts])[:, cols], 0.0))
        parts[n] = Part(_counts(tf, d.prompts), shape, d.strong, d.weak, u.strong, u.weak)
    words = {n: shape_features_words(raw[n].prompts) for n in NAMES}
    lobo: dict[str, dict[str, str]] = {}
    chosen: dict[str, tuple[str, ...]] = {}
    inner_rows: dict[str, dict[str, str]] = {}
    for t in NAMES:
        t0 = time.time()
        a, b = (n for n in NAMES if n != t)
        m = members([parts[a], parts[b]], parts[t], args.power)
        lobo.setdefault("random", {})[t] = cell(random_scores(raw[t], 0), parts[t], args.ci)
        lobo.setdefault("words (diagnostic)", {})[t] = cell(words[t], parts[t], args.ci)
        for combo in GRID:
            lobo.setdefault(label(combo), {})[t] = cell(blend(m, combo), parts[t], args.ci)
        # The nested choice: single-benchmark transfers between the two training benchmarks only.
        mab, mba = members([parts[a]], parts[b]), members([parts[b]], parts[a])
        best, best_v = GRID[0], -1.0
        for combo in GRID:
            v = (_apgr(blend(mab, combo), parts[b]), _apgr(blend(mba, combo), parts[a]))
            inner_rows.setdefault(label(combo), {})[t] = f"{v[0]:.3f} / {v[1]:.3f}"
            if min(v) > best_v:
                best, best_v = combo, min(v)
        chosen[t] = best
        lobo.setdefault("nested choice", {})[t] = cell(blend(m, best), parts[t], args.ci)
        print(f"<!-- {t}: {time.time() - t0:.0f} s; nested choice {label(best)} -->", flush=True)

    head = "| blend (mean rank) | " + " | ".join(f"{t} ← {'+'.join(n for n in NAMES if n != t)}" for t in NAMES)
    print("\n### Leave-one-benchmark-out APGR (95% interval; ~ = not above random with confidence, ↓ = below)\n")
    print(head + " |\n|---|" + "---|" * len(NAMES))
    for k, row in lobo.items():
        print(f"| {k} | " + " | ".join(row[t] for t in NAMES) + " |")
    print("\nNested choice per held-out benchmark: " + "; ".join(f"{t}: {label(c)}" for t, c in chosen.items()))
    print("\n### Inner transfers the nested choice read (second training benchmark ← first / first ← second)\n")
    print("| blend | " + " | ".join(f"for {t}: {'/'.join(n for n in NAMES if n != t)}" for t in NAMES)
          + " |\n|---|" + "---|" * len(NAMES))
    for k, row in inner_rows.items():
        print(f"| {k} | " + " | ".join(row[t] for t in NAMES) + " |")
    if args.no_in_domain:
        return
    print("\n### In-domain, 5-fold CV by question (same folds as bench/routers_benchmark.py)\n")
    print("| blend | MMLU | GSM8K |\n|---|---|---|")
    oof = {n: {label(c): np.zeros(len(parts[n].weak)) for c in GRID} for n in ("mmlu", "gsm8k")}
    for n in ("mmlu", "gsm8k"):
        for te in group_folds(raw[n], 5, 0):
            tr = np.setdiff1d(np.arange(len(parts[n].weak)), te)
            m = members([parts[n].take(tr)], parts[n].take(te))
            for combo in GRID:
                oof[n][label(combo)][te] = blend(m, combo)
    for combo in GRID:
        k = label(combo)
        print(f"| {k} | " + " | ".join(cell(oof[n][k], parts[n], args.ci) for n in ("mmlu", "gsm8k")) + " |",
              flush=True)


def shape_features_words(prompts: list[str]) -> np.ndarray:
    return np.array([len(p.lower().split()) for p in prompts], dtype=float) + np.random.default_rng(0).random(
        len(prompts)) * 1e-6


if __name__ == "__main__":
    main()
