"""Checks of a saved router against a user's data before it is deployed: does the threshold
calibrated on the training prompts still send the intended share of traffic to the strong model
here? (A router calibrated for 30% that sends 19% on new data will not cost or score what it
promised.) `tierwise eval DATA -r saved.json` prints these."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset


@dataclass
class SavedRouterCheck:
    name: str
    target_share: float
    share: float | None  # strong-call share on the data at the calibrated threshold (None: no calibration)
    threshold: float | None
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"router": self.name, "target_share": self.target_share, "share": self.share,
                "threshold": self.threshold, "warnings": self.warnings, **self.extra}

    def text(self) -> str:
        lines = [f"**{self.name}**"]
        if self.share is not None:
            lines.append(f"- calibrated for {self.target_share:.0%} strong calls (`--target-share`); at that threshold "
                         f"({self.threshold:.4f}) it sends {self.share:.1%} of these queries to the strong model")
        lines += [_in_words(k, v) for k, v in self.extra.items() if isinstance(v, (str, int, float))]
        lines += [f"- WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)


def _in_words(key: str, value: Any) -> str:
    """An extra figure as a line a first-time reader can act on (`--json` keeps the bare keys)."""
    if key.startswith("far_share_"):
        return (f"- {key}: {value} (shift, {key.removeprefix('far_share_')} space: the share of these queries farther "
                f"from its training prompts than {FAR_QUANTILE:.0%} of those are from each other; about "
                f"{1 - FAR_QUANTILE:.2f} for data like its own, a warning past {FAR_SHARE:g})")
    if key.startswith("mean_percentile_"):
        return (f"- {key}: {value} (how far these queries lie from its training prompts, as a percentile of the "
                "training prompts' own distances: about 0.5 for data like its own, 1.0 for data unlike it)")
    if key == "in_training":
        return f"- {key}: {value} (queries that are among its training prompts)"
    return f"- {key}: {value}"


def share_is_off(target: float, share: float) -> bool:
    """Far from the calibrated share: more than 5 points, or a quarter of the target, away."""
    return abs(share - target) > max(0.05, 0.25 * target)


def spec_of(router: Any) -> str:
    """The `--router` spec a saved router was trained as, as far as its kind tells: `-r transfer` saves a router of
    kind `options` (the options' geometry over a `transfer` base), and its row read `mine (saved options)`."""
    if router.kind != "options":
        return str(router.kind)
    if type(getattr(router, "vectors", None)).__name__ != "StaticTokenVectors":
        return "transfer-lsa-options-minilm"
    embedded = getattr(getattr(getattr(router, "base", None), "vectors", None), "kind", None) == "embedding"
    return "transfer" if embedded else "transfer-lsa-options"


def check_saved_router(spec: str, data: OutcomeDataset, target_share: float, *, cache: Any = None,
                       scores: np.ndarray | None = None) -> SavedRouterCheck:
    from tierwise.routers.base import attach_embedding_cache, load_router, threshold_for_share

    router = attach_embedding_cache(load_router(spec), cache)
    name = f"{Path(spec).stem} (saved {spec_of(router)})"
    s = router.score(data) if scores is None else scores
    if router.train_quantiles is None:
        check = SavedRouterCheck(name, target_share, None, None, ["the router has no saved calibration"])
        shift_report(router, data, check)
        return check
    t = threshold_for_share(router.train_quantiles, target_share)
    share = float(np.mean(s >= t))
    check = SavedRouterCheck(name, target_share, share, t)
    shift_report(router, data, check)
    if share_is_off(target_share, share):
        check.warnings.append(
            f"calibrated for {target_share:.0%} strong calls but sends {share:.1%} here: its scores on this data "
            "are not distributed as on its training data; a `learned` route with `target_share` re-fits its "
            "threshold on recent traffic (the default), or retrain")
    return check


FAR_QUANTILE = 0.95
FAR_SHARE = 0.25  # the `learned` route's default `shift.demote_above`


def shift_report(router: Any, data: OutcomeDataset, check: SavedRouterCheck) -> None:
    """How far `data` lies from the router's training prompts, per space of its training profile:
    the share of queries farther from them than 95% of training prompts are from their neighbours
    (about 5% for data like the training data)."""
    from tierwise.routers.shift import router_embedding

    profile = getattr(router, "profile", None)
    if profile is None:
        check.extra["shift"] = "unknown: the router carries no training profile (re-save it with this version)"
        return
    seen = profile.seen_count(data.prompts)
    if seen:
        check.extra["in_training"] = seen
        check.warnings.append(
            f"{seen} of these {len(data.prompts)} queries ({seen / len(data.prompts):.0%}) are among its training "
            "prompts: its figures on them are in-sample, so optimistic (APGR can pass 1); score it on queries it "
            "was not trained on")
    for space, p in profile.percentiles(data.prompts, router_embedding(router)).items():
        far = float(np.mean(p > FAR_QUANTILE))
        check.extra[f"far_share_{space}"] = round(far, 4)
        check.extra[f"mean_percentile_{space}"] = round(float(np.mean(p)), 4)
        if far > FAR_SHARE:
            check.warnings.append(
                f"this router has not seen data like yours ({space} space): {far:.0%} of these queries are farther "
                f"from its {profile.n_train} training prompts than {FAR_QUANTILE:.0%} of those are from each other "
                f"(about {1 - FAR_QUANTILE:.0%} for data like its own); expect its APGR here to differ from its "
                "training figures, and a `learned` route with `shift` to demote itself")


def calibrate_out_of_fold(router: Any, spec: str, data: OutcomeDataset, *, folds: int, seed: int = 0,
                          cache: Any = None, oof: np.ndarray | None = None, progress: Any = None) -> bool:
    """Calibrate a router about to be saved on scores of prompts it did not train on.

    `linear`, `mf-*` and `ensemble` keep, from `fit`, the quantiles of their own training prompts' scores; those
    fit the training labels (a prompt's own words were learnt), so they spread wider than new prompts' scores
    and a threshold set for 30% sent 20% of new prompts of the same kind to the strong model. The out-of-fold
    scores of a cross-validation (`oof`, when `tierwise eval` ran one for this spec) or of `folds` fits made
    here stand in for new prompts. Routers that calibrate out of fold themselves (`stack`, `transfer`, `knn`)
    are left as they are. With fewer questions than `folds`, one fold per question; False with fewer than two (the
in-sample calibration stays)."""
    from functools import partial

    from tierwise.evaluation.cv import TooFewQuestions, cross_val_scores
    from tierwise.routers import make_router
    from tierwise.routers.base import remember_quantiles

    if not getattr(router, "IN_SAMPLE_CALIBRATION", False):
        return True
    if oof is None:
        say = None if progress is None else (
            lambda f, k: progress(f"{spec}: out-of-fold scores for its calibration, fold {f} of {k}"))
        make = partial(make_router, spec, embedding_cache=cache)
        try:
            oof = cross_val_scores(data, make, folds, seed, progress=say)
        except TooFewQuestions as e:  # fewer questions than folds: one fold per question, when there are two
            if e.questions < 2:
                return False
            oof = cross_val_scores(data, make, e.questions, seed, progress=say)
    remember_quantiles(router, oof)
    return True
