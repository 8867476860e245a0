"""The `transfer` router's weak-fails member with its words' weights shrunk towards those shared across subjects
(`words=`, issue 22, session 32): a word that marks hard questions in one subject alone counts less on a new subject
than a word that marks them in every subject."""

from __future__ import annotations

import numpy as np
import pytest

from tests.routers.saved import saved_before
from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers import load_router, make_router, save_router

SUBJECTS = tuple(f"s{i}" for i in range(6))
ONE = ("tfidf-logit-wf",)


def one_subjects_word(n_per: int = 20) -> OutcomeDataset:
    """In every subject a question that asks for an exception fails the weak model 70% of the time, a plain one 30%;
    in subject s0 alone, half the questions carry the word "zeta", and those always fail it."""
    prompts, weak, subjects = [], [], []
    for s_i, subject in enumerate(SUBJECTS):
        for i in range(n_per):
            exception = i % 2 == 0
            local = s_i == 0 and (i // 2) % 2 == 0
            stem = f"All of the following are {subject} item {i} EXCEPT" if exception else \
                f"Which is a {subject} item {i}?"
            rate = 1.0 if local else (0.7 if exception else 0.3)
            k = i // 4 if s_i == 0 else i // 2
            prompts.append(stem + " zeta" if local else stem)
            weak.append(0.0 if (k * 0.6180339) % 1 < rate else 1.0)
            subjects.append(subject)
    n = len(prompts)
    return OutcomeDataset("mc", prompts, np.ones(n), np.array(weak), [f"mc:{i}" for i in range(n)], subjects)


def weight(router, word: str) -> float:  # noqa: ANN001
    idx, val = router.tfidf.row(word)
    return float(np.dot(router.logit[idx], val))


def test_shared_words_shrink_a_word_of_one_subject_more_than_a_word_of_every_subject_and_round_trip(tmp_path):
    d = one_subjects_word()
    pooled = make_router("transfer-lsa", members=ONE).fit(d)
    shared = make_router("transfer-lsa", members=ONE, words="shared-subject").fit(d)
    assert pooled.words == "pooled"
    local, everywhere = (weight(shared, w) / weight(pooled, w) for w in ("zeta", "EXCEPT"))
    assert 0 < local < everywhere - 0.1  # about 0.7 vs 0.9 here; 1 and 1 with pooled words
    r = load_router(save_router(shared, tmp_path / "shared"))
    assert r.words == "shared-subject"
    np.testing.assert_allclose(r.score(d), shared.score(d), rtol=1e-6, atol=1e-6)


def test_words_are_checked_and_routers_saved_without_them_keep_pooled_words(tmp_path):
    with pytest.raises(ValueError, match="words must be one of"):
        make_router("transfer-lsa", words="shared")
    d = one_subjects_word()
    before = make_router("transfer-lsa").fit(d)
    r = saved_before(before, tmp_path / "before", d, "words")  # as a router saved before session 32 wrote it
    assert r.words == "pooled"
