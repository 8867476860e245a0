"""Cascade on GSM8K with recorded answers: Mixtral (local) always answers, GPT-4 (frontier) only
when the verifier escalates. Reports quality and frontier-call share in RouteLLM's terms.

Data: ../shared/data/routellm-gpt4-mixtral (see its PROVENANCE.md), 1,307 questions after
RouteLLM's decontamination. Nothing is called: the recorded responses and correctness
labels stand in for the two models.

Escalation scores (higher = send to the frontier model):
- `arithmetic`: 1 − the arithmetic verifier's score on the local answer (share of correct
  equations, discounted for no final answer, a cut-off answer, a final number no step
  computed, a non-integer answer). Untrained: no fitting, so no cross-validation is needed.
- `arithmetic+<router>` (with `--scorer`): the verifier combined with a learned post-hoc
  scorer from `tierwise.routers` (any `make_router` spec; `posthoc` sees the local answer),
  whose scores are 5-fold cross-validated by question. Two combinations: `lex` (verifier
  first, the scorer orders answers the verifier scores the same) and `mean` (mean of the
  two scores' ranks). `--scorer module:function` plugs any other scorer:
  `function(dataset, k, seed) -> np.ndarray` of out-of-fold escalation scores.

Cost counts the local call on every query (`cascade=True`), with RouteLLM's cost model.

Run: .venv/bin/python bench/cascade_gsm8k.py [--scorer posthoc] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.evaluation.loaders import load_gsm8k
from tierwise.evaluation.metrics import Prices, cost_per_1k, summarize
from tierwise.verifiers.arithmetic import ArithmeticVerifier, analyse, score_report

ScorerFn = Callable[[OutcomeDataset, int, int], np.ndarray]


def arithmetic_escalation(data: OutcomeDataset) -> tuple[np.ndarray, np.ndarray]:
    """Per query: escalation score (1 − verifier score) and whether the default verdict fails."""
    verifier = ArithmeticVerifier(require_final_answer=True, expect_integer=True)
    answers = data.weak_responses or []
    scores = np.array([1.0 - score_report(analyse(a), expect_integer=True) for a in answers])
    failed = np.array([not verifier.check(a).passed for a in answers])
    return scores, failed


def router_scorer(spec: str) -> ScorerFn:
    """Out-of-fold scores of a `tierwise.routers` router, or of a `module:function` scorer."""
    if ":" in spec:
        mod, _, fn = spec.partition(":")
        return getattr(importlib.import_module(mod), fn)  # type: ignore[no-any-return]

    def oof(data: OutcomeDataset, k: int, seed: int) -> np.ndarray:
        from tierwise.evaluation.cv import cross_val_scores
        from tierwise.routers import make_router

        return cross_val_scores(data, lambda: make_router(spec), k=k, seed=seed)

    return oof


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks scaled to [0, 1], ties sharing their mean rank."""
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x))
    for v in np.unique(x):
        m = x == v
        r[m] = r[m].mean()
    return r / max(1, len(x) - 1)


def combine_lexicographic(verifier: np.ndarray, scorer: np.ndarray) -> np.ndarray:
    """Verifier first; within one verifier score, the scorer's rank decides (it only breaks ties)."""
    verifier = np.round(verifier, 9)  # float noise must not count as a level
    levels = np.unique(verifier)
    gap = float(np.min(np.diff(levels))) if len(levels) > 1 else 1.0
    return verifier + 0.999 * gap * ranks(scorer)


def combine_mean_rank(verifier: np.ndarray, scorer: np.ndarray) -> np.ndarray:
    return (ranks(verifier) + ranks(scorer)) / 2


def operating_point(failed: np.ndarray, data: OutcomeDataset, prices: Prices) -> dict[str, Any]:
    """The cascade as deployed: escalate exactly when the verifier's verdict fails."""
    quality = float(np.where(failed, data.strong, data.weak).mean())
    share = float(failed.mean())
    gap = float(data.strong.mean() - data.weak.mean())
    return {"frontier_share_pct": round(100 * share, 2), "accuracy_pct": round(100 * quality, 2),
            "pgr": round((quality - float(data.weak.mean())) / gap, 4),
            "usd_per_1k": round(cost_per_1k(share, prices, cascade=True), 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="root of routellm-gpt4-mixtral (default: ../shared/data/...)")
    ap.add_argument("--scorer", action="append", default=[],
                    help="router spec (e.g. posthoc) or module:function to combine with the verifier")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    data = load_gsm8k(args.data)
    prices = Prices()
    esc, failed = arithmetic_escalation(data)
    rows = [summarize("arithmetic", esc, data.strong, data.weak, prices, cascade=True)]
    for spec in args.scorer:
        try:
            scored = np.asarray(router_scorer(spec)(data, args.folds, args.seed), dtype=float)
        except Exception as e:  # a scorer still being built must not hide the verifier's numbers
            print(f"scorer {spec!r} unavailable: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        rows.append(summarize(f"{spec} (alone, {args.folds}-fold CV)", scored, data.strong, data.weak, prices,
                              cascade=True))
        rows.append(summarize(f"arithmetic+{spec} lex", combine_lexicographic(esc, scored), data.strong, data.weak,
                              prices, cascade=True))
        rows.append(summarize(f"arithmetic+{spec} mean", combine_mean_rank(esc, scored), data.strong, data.weak,
                              prices, cascade=True))

    print(f"GSM8K n={len(data)}  local (Mixtral) {100 * data.weak.mean():.2f}%  "
          f"frontier (GPT-4) {100 * data.strong.mean():.2f}%  local cost paid on every query")
    print(f"{'escalation score':<36} {'APGR':>7} {'CPT50%':>8} {'CPT80%':>8} {'$/1k@50':>9} {'$/1k@80':>9}")
    for s in rows:
        print(f"{s.name:<36} {s.apgr:>7.4f} {s.cpt50:>8.2f} {s.cpt80:>8.2f} {s.cost50:>9.4f} {s.cost80:>9.4f}")
    point = operating_point(failed, data, prices)
    print("verdict gate (escalate iff the arithmetic verifier fails):", point)
    print(f"always frontier: $/1k {cost_per_1k(1.0, prices):.4f}; cascade escalating all: "
          f"{cost_per_1k(1.0, prices, cascade=True):.4f}")
    if args.json:
        out = {"n": len(data), "rows": [s.row() for s in rows], "verdict_gate": point,
               "curves": {s.name: {"strong_pct": s.curve.strong_pct.tolist(), "quality": s.curve.quality.tolist()}
                          for s in rows}}
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
