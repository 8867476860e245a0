"""k-fold cross-validation by question: every query is scored by a router that never saw it
(nor any query of the same group), and the out-of-fold scores make one curve, as RouteLLM
scores one curve per benchmark."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset


class TooFewQuestions(ValueError):
    """Fewer questions (groups) than folds: `tierwise eval` turns it into advice on its own options."""

    def __init__(self, name: str, questions: int, k: int, rows: int | None = None) -> None:
        # rows that share an `id` are one question: 50 rows under one id read "1 questions" with no word why
        shared = (f" ({rows:,} rows: rows that share an `id` are one question)"
                  if rows is not None and rows > questions else "")
        super().__init__(f"dataset {name!r} has {questions} questions, fewer than k={k} folds{shared}")
        self.questions, self.k = questions, k


def group_folds(data: OutcomeDataset, k: int = 5, seed: int = 0, *, merge_prompts: bool = False) -> list[np.ndarray]:
    """Indices of each test fold; groups are shuffled and dealt round-robin.

    `merge_prompts`: a query whose prompt (`same_prompt`: whitespace and case aside) another group also holds
    goes to that group's fold (the first
    group, in data order, of each prompt), so the same prompt under two ids is never trained on and scored;
    every other query keeps the fold it has without merging. When merging would leave a fold empty, the
    folds of the ids alone."""
    if k < 2:
        raise ValueError("k-fold cross-validation needs k ≥ 2")
    groups = sorted(set(data.groups))
    if len(groups) < k:
        raise TooFewQuestions(data.name, len(groups), k, len(data.groups))
    order = np.random.default_rng(seed).permutation(len(groups))
    fold_of = {groups[g]: i % k for i, g in enumerate(order)}
    if merge_prompts:
        root = _prompt_roots(data)
        if root:
            merged = {g: fold_of[_find(root, g)] for g in groups}
            if len(set(merged.values())) == k:
                fold_of = merged
    assign = np.array([fold_of[g] for g in data.groups])
    return [np.flatnonzero(assign == f) for f in range(k)]


def _find(parent: dict[str, str], g: str) -> str:
    while parent.get(g, g) != g:
        parent[g] = g = parent.get(parent[g], parent[g])
    return g


def _prompt_roots(data: OutcomeDataset) -> dict[str, str]:
    """Union-find over groups: groups holding one prompt joined under the first (in data order) of them;
    empty when no prompt is in two groups."""
    first: dict[str, str] = {}
    parent: dict[str, str] = {}
    rank = {g: i for i, g in enumerate(dict.fromkeys(data.groups))}
    for p, g in zip(data.prompts, data.groups, strict=True):
        h = first.setdefault(same_prompt(p), g)
        if h != g:
            a, b = _find(parent, g), _find(parent, h)
            if a != b:
                keep, drop = (a, b) if rank[a] < rank[b] else (b, a)
                parent[drop] = keep
    return parent


def same_prompt(prompt: str) -> str:
    """What two spellings of one prompt share: its words, case folded (a trailing newline, doubled spaces or
    capitals made the same question two, trained on and scored)."""
    return " ".join(prompt.split()).casefold()


def cross_val_scores(data: OutcomeDataset, make: Callable[[], object], k: int = 5, seed: int = 0,
                     progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Out-of-fold scores: for each fold, `make()` a fresh router, fit it on the rest, score the fold.
    `progress(fold, k)` is called as each fold starts (1-based)."""
    scores = np.zeros(len(data))
    for f, test in enumerate(group_folds(data, k, seed, merge_prompts=True), 1):
        if progress is not None:
            progress(f, k)
        train = np.setdiff1d(np.arange(len(data)), test)
        router = make()
        router.fit(data.take(train))  # type: ignore[attr-defined]
        scores[test] = router.score(data.take(test))  # type: ignore[attr-defined]
    return scores
