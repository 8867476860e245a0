"""Where a saved router's threshold for a 30% strong-call share lands on new prompts of the training data's kind:
calibrated on its training prompts' own scores (what `fit` keeps) against out-of-fold scores (what `tierwise eval
--save` keeps since session 24 for linear, posthoc, mf-* and ensemble*).

    .venv/bin/python bench/calibration_oof_check.py SPEC TRAIN.jsonl NEW.jsonl
(bench/new_user_datasets.py writes qqp_route.jsonl and qqp_new.jsonl)
"""

from __future__ import annotations

import sys

import numpy as np

from tierwise.evaluation.cv import group_folds
from tierwise.evaluation.loaders import load_dataset
from tierwise.routers import make_router
from tierwise.routers.base import QUANTILE_POINTS, threshold_for_share


def main(spec: str, train_path: str, new_path: str, share: float = 0.3) -> None:
    train, new = load_dataset(train_path), load_dataset(new_path)
    router = make_router(spec).fit(train)
    oof = np.zeros(len(train))
    for fold in group_folds(train, 5, 0):
        rest = np.setdiff1d(np.arange(len(train)), fold)
        oof[fold] = make_router(spec).fit(train.take(rest)).score(train.take(fold))
    scores = router.score(new)
    for label, quantiles in (("training prompts' own scores", router.train_quantiles),
                             ("out-of-fold scores", np.quantile(oof, QUANTILE_POINTS))):
        t = threshold_for_share(quantiles, share)
        print(f"{spec}: calibrated on {label}: threshold {t:.4f} sends {np.mean(scores >= t):.1%} of {new.name} "
              f"(target {share:.0%})")


if __name__ == "__main__":
    main(*sys.argv[1:4])
