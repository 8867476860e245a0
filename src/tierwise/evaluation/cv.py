"""k-fold cross-validation by question: every query is scored by a router that never saw it
(nor any query of the same group), and the out-of-fold scores make one curve, as RouteLLM
scores one curve per benchmark."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset


class TooFewQuestions(ValueError):
    """Fewer questions (groups) than folds: `tierwise eval` turns it into advice on its own options."""

    def __init__(self, name: str, questions: int, k: int) -> None:
        super().__init__(f"dataset {name!r} has {questions} questions, fewer than k={k} folds")
        self.questions, self.k = questions, k


def group_folds(data: OutcomeDataset, k: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Indices of each test fold; groups are shuffled and dealt round-robin."""
    if k < 2:
        raise ValueError("k-fold cross-validation needs k ≥ 2")
    groups = sorted(set(data.groups))
    if len(groups) < k:
        raise TooFewQuestions(data.name, len(groups), k)
    order = np.random.default_rng(seed).permutation(len(groups))
    fold_of = {groups[g]: i % k for i, g in enumerate(order)}
    assign = np.array([fold_of[g] for g in data.groups])
    return [np.flatnonzero(assign == f) for f in range(k)]


def cross_val_scores(data: OutcomeDataset, make: Callable[[], object], k: int = 5, seed: int = 0,
                     progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Out-of-fold scores: for each fold, `make()` a fresh router, fit it on the rest, score the fold.
    `progress(fold, k)` is called as each fold starts (1-based)."""
    scores = np.zeros(len(data))
    for f, test in enumerate(group_folds(data, k, seed), 1):
        if progress is not None:
            progress(f, k)
        train = np.setdiff1d(np.arange(len(data)), test)
        router = make()
        router.fit(data.take(train))  # type: ignore[attr-defined]
        scores[test] = router.score(data.take(test))  # type: ignore[attr-defined]
    return scores
