"""The stack and transfer routers' INNER cross-validation keeps a repeated prompt in one fold, as the outer folds
of `tierwise eval` do (`cv.same_prompt`: case and whitespace aside). Before (session 25's leftovers): the inner
folds split by id only, so a prompt exported twice under two ids was fitted in one inner fold and scored in
another: on labels that are pure noise the stack's inner APGR read a signal, and it chose its settings,
weights and calibration from it."""

from __future__ import annotations

import numpy as np
import pytest

import tierwise.evaluation.cv as cv
from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers import make_router

WORDS = ("apple", "river", "stone", "cloud", "lamp", "garden", "copper", "violin", "harbour", "lemon", "tunnel",
         "meadow", "engine", "pepper", "saddle", "window", "falcon", "marble", "orchid", "candle")


def noise_twice(n: int = 150, seed: int = 3) -> OutcomeDataset:
    """`n` distinct prompts, each written twice under two ids (the second capitalised, with doubled spaces and a
    trailing newline), the copies' outcomes the same: the strong model always right, the weak one by a coin
    toss (so the gain is pure noise and APGR has a gap to recover)."""
    rng = np.random.default_rng(seed)
    prompts = [" ".join(rng.choice(WORDS, 6)) + f" number {i}?" for i in range(n)]
    strong = np.ones(n)
    weak = rng.integers(0, 2, n).astype(float)
    second = [p.upper().replace(" ", "  ") + "\n" for p in prompts]
    ids = [f"a-{i}" for i in range(n)] + [f"b-{i}" for i in range(n)]
    return OutcomeDataset("noise-twice", prompts + second, np.concatenate([strong, strong]),
                          np.concatenate([weak, weak]), ids, ["s"] * (2 * n))


@pytest.fixture(scope="module")
def data() -> OutcomeDataset:
    return noise_twice()


def test_the_stacks_inner_cv_reads_no_signal_in_noise_written_twice(data):
    router = make_router("stack-lsa").fit(data)
    # 0.45-0.51 for every member on seeds 3-5; with the copies split across inner folds the TF-IDF members and
    # the trees read each prompt's twin: 0.66-0.73, and the stack weighed the trees ~0.95
    assert max(router.inner_apgr.values()) < 0.6, router.inner_apgr


@pytest.mark.parametrize("spec", ["stack-lsa", "transfer-lsa"])
def test_inner_folds_keep_each_repeated_prompt_in_one_fold(spec, data, monkeypatch):
    seen: list[list[np.ndarray]] = []
    real = cv.group_folds

    def recording(*args, **kwargs):
        folds = real(*args, **kwargs)
        seen.append(folds)
        return folds

    monkeypatch.setattr(cv, "group_folds", recording)
    make_router(spec).fit(data)
    assert seen, "the router made no inner folds"
    for folds in seen:
        fold_of = {int(i): f for f, te in enumerate(folds) for i in te}
        n = len(data) // 2
        split = [i for i in range(n) if fold_of[i] != fold_of[i + n]]
        assert not split, f"{len(split)} of {n} repeated prompts split across inner folds"


def test_the_transfer_routers_subject_oof_folds_keep_each_repeated_prompt_in_one_fold(data, monkeypatch):
    """`weigh: subject-oof-shrunk` (the default since session 30; `subject-oof` before) folds by subject, not by id: the same prompt under two subjects was fitted
    in one fold and scored in another (session 26's leftovers), as the id folds did before session 25."""
    import tierwise.routers.transfer as transfer

    n = len(data) // 2
    subjects = [f"first-{i % 6}" for i in range(n)] + [f"second-{i % 6}" for i in range(n)]  # the twin elsewhere
    twice = OutcomeDataset(data.name, data.prompts, data.strong, data.weak, data.groups, subjects)
    seen: list[list[np.ndarray]] = []
    real = transfer.subject_folds

    def recording(*args, **kwargs):
        folds = real(*args, **kwargs)
        if folds is not None:
            seen.append(folds)
        return folds

    monkeypatch.setattr(transfer, "subject_folds", recording)
    router = make_router("transfer-lsa")
    assert router.weigh == "subject-oof-shrunk"
    router.fit(twice)
    assert seen, "the router made no subject folds"
    for folds in seen:
        fold_of = {int(i): f for f, te in enumerate(folds) for i in te}
        split = [i for i in range(n) if fold_of[i] != fold_of[i + n]]
        assert not split, f"{len(split)} of {n} repeated prompts split across subject folds"
