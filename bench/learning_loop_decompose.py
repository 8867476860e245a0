"""Where the learning loop's steady state stands against the offline `linear` router, and why (issue 21, (a)).

    TIERWISE_DATA=../shared/data OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/learning_loop_decompose.py \
        --seed 0 [--router-cache /tmp/lt_rcache]

Replays the loop with the default replay settings (`bench/learning_loop.py --within --explore serve`, no drift)
and, on its last 2,000 requests and at its own frontier share there, scores other orderings of the same
requests (quality when the top share of requests by score go to the frontier):

- `linear` (5-fold CV over the whole stream, trained in hindsight on every request's gain): the goal's curve;
- the hindsight per-type choice (each type's mean gain over the whole data);
- the loop's own ordering family with perfect type estimates: each type's true acceptance moved by the loop's
  learned length slopes (so: is the within-type ordering the limit, or the type estimates?);
- the loop's final posteriors with its slopes (its estimates at the end, re-ranked);
- a text model trained only on the verdicts the loop bought before the last 2,000 requests (the `linear`
  router's hashed prompt features, ridge on the verdict: rejected 1, accepted 0 — what a judge reports, not
  the gain), alone and rank-averaged with the loop's type + slope estimate.

These are counterfactual orderings at a fixed share: routing by them would change which verdicts are bought.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from learning_loop import (
    JUDGE,
    PF,
    PW,
    SHADOW,
    accepted,
    linear_cv_scores,
    load_stream,
    quality_at_share,
    replay,
    type_scores,
)
from scipy.stats import rankdata

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.learning.loop import LoopSettings
from tierwise.routers import make_router


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-u))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tail", type=int, default=2000)
    ap.add_argument("--router-cache", default=None, help="folder with linear_cv_seed<N>.npy (bench/learning_loop.py)")
    ap.add_argument("--no-linear", action="store_true", help="skip the offline router where it is not cached (slow)")
    args = ap.parse_args()
    data, types, _ = load_stream(args.seed)
    n = len(data)
    s, w = data.strong, data.weak
    settings = LoopSettings.model_validate({
        "sampling": "value",
        "value": {"horizon": 10_000, "saving_usd": PF - PW, "judge_usd": JUDGE, "shadow_usd": SHADOW,
                  "explore": "serve", "explore_after": 5},
        "schedule": {"sample_rate": 0.10, "audit_rate": 0.02, "shadow_audit_rate": 0.005,
                     "shadow_stop_quantile": 0.70, "reprobe_uses": 5, "shadow_stop_after": 20},
        "boundary": {"quality_target": 0.75, "discount": 1.0, "credible": 0.60},
        "within": {"enabled": True}})
    run = replay(data, types, settings, seed=args.seed)
    loop = run.loop
    tail = slice(n - args.tail, n)
    share = float(run.frontier[tail].mean())
    q = float(run.quality[tail].mean())
    mt = np.array([g.startswith("mt-bench") for g in data.groups])
    acc = np.array([accepted(a, b, m) for a, b, m in zip(s, w, mt, strict=True)])
    names = np.array(types)
    true_acc = {t: float(acc[names == t].mean()) for t in set(types)}
    z = np.array([loop.within.types[t].z(float(np.log1p(len(p)))) if t in loop.within.types else 0.0
                  for t, p in zip(types, data.prompts, strict=True)])
    slope = np.array([loop.within.slope(t) for t in types])
    orderings: dict[str, np.ndarray] = {}
    cache = Path(args.router_cache) / f"linear_cv_seed{args.seed}.npy" if args.router_cache else None
    if cache is not None and cache.exists():
        orderings["linear (offline, hindsight)"] = np.load(cache)
    elif not args.no_linear:
        orderings["linear (offline, hindsight)"] = linear_cv_scores(data)
    orderings["hindsight per-type gain"] = type_scores(types, s, w)
    orderings["true type acceptance + the loop's slopes"] = \
        1.0 - _sigmoid(_logit(np.array([true_acc[t] for t in types])) + slope * z)
    loop_est = 1.0 - _sigmoid(_logit(np.array([loop.boundary.state(t).mean() for t in types])) + slope * z)
    orderings["the loop's final posteriors + slopes"] = loop_est
    judged = np.nonzero(run.eval_cost[: n - args.tail] > 0)[0]
    sub = data.take(judged)
    rejected = 1.0 - acc[judged]
    text = make_router("linear").fit(OutcomeDataset(sub.name, sub.prompts, rejected, np.zeros_like(rejected),
                                                    sub.groups, sub.subjects))
    text_scores = np.zeros(n)
    text_scores[tail] = text.score(data.take(np.arange(n - args.tail, n)))
    orderings[f"text model on the loop's {len(judged)} bought verdicts"] = text_scores
    # the same features fitted to the residual of each verdict from its type's final posterior mean: what a model
    # with the type's estimate as offset adds (it keeps the type-level evidence, and so the drift test's effect)
    type_mean = np.array([loop.boundary.state(t).mean() for t in types])
    resid = rejected - (1.0 - type_mean[judged])
    offset_model = make_router("linear").fit(OutcomeDataset(sub.name, sub.prompts, resid, np.zeros_like(resid),
                                                            sub.groups, sub.subjects))
    offset_scores = np.zeros(n)
    offset_scores[tail] = (1.0 - type_mean[tail]) + offset_model.score(data.take(np.arange(n - args.tail, n)))
    mix = np.zeros(n)
    mix[tail] = rankdata(text_scores[tail]) + rankdata(loop_est[tail])
    orderings["  ... rank-averaged with the loop's type + slope estimate"] = mix
    orderings["the loop's type posteriors + a text model of the residual"] = offset_scores
    print(f"seed {args.seed}: last {args.tail} requests, loop frontier share {share * 100:.1f}%, "
          f"loop quality {q * 100:.2f}")
    print("| ordering at the loop's share | quality | loop's gap to it |\n|---|---|---|")
    for name, sc in orderings.items():
        v = quality_at_share(sc[tail], s[tail], w[tail], share)
        print(f"| {name} | {v * 100:.2f} | {(q - v) * 100:+.2f} |")


if __name__ == "__main__":
    main()
