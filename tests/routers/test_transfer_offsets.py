"""The `transfer` router's weak-fails member with free intercepts per source or per subject (`offsets=`, issue 22,
session 31): its words learn which question of a subject the weak model fails, not which subject it fails more."""

from __future__ import annotations

import numpy as np
import pytest

from tests.routers.saved import saved_before
from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers import load_router, make_router, save_router

SUBJECTS = ("s0", "s1", "s2", "s3", "s4", "s5")


def subjects_that_differ(n_per: int = 20) -> OutcomeDataset:
    """Half the subjects (their prompts say "quarkish") fail the weak model far more often; inside every subject a
    question that asks for an exception fails it 20 points more often than a plain one."""
    prompts, weak, subjects = [], [], []
    for s_i, subject in enumerate(SUBJECTS):
        hard_subject = s_i % 2 == 0
        word = "quarkish" if hard_subject else "meadowy"
        for i in range(n_per):
            exception = i % 2 == 0
            stem = f"All of the following are {word} {subject} item {i} EXCEPT" if exception else \
                f"Which is a {word} {subject} item {i}?"
            prompts.append(stem)
            rate = (1.0 if exception else 0.8) if hard_subject else (0.2 if exception else 0.0)
            weak.append(0.0 if (i // 2) % 5 < round(rate * 5) else 1.0)
            subjects.append(subject)
    n = len(prompts)
    return OutcomeDataset("mc", prompts, np.ones(n), np.array(weak), [f"mc:{i}" for i in range(n)], subjects)


HARD_PLAIN = "Which is a quarkish s6 item 99?"
EASY_EXCEPTION = "All of the following are meadowy s7 item 99 EXCEPT"


def test_subject_intercepts_let_the_words_learn_difficulty_inside_a_subject_and_round_trip(tmp_path):
    d = subjects_that_differ()
    one = ("tfidf-logit-wf",)
    pooled = make_router("transfer-lsa", members=one).fit(d)
    # one intercept for all: the subject's word says more than the exception (80% vs 20% failures)
    assert pooled.score_text(HARD_PLAIN) > pooled.score_text(EASY_EXCEPTION)
    within = make_router("transfer-lsa", members=one, offsets="subject").fit(d)
    # the subjects' rates are the intercepts': an exception asked is what fails the weak model in a new subject
    assert within.score_text(EASY_EXCEPTION) > within.score_text(HARD_PLAIN)
    r = load_router(save_router(within, tmp_path / "within"))
    assert r.offsets == "subject"
    np.testing.assert_allclose(r.score(d), within.score(d), rtol=1e-6, atol=1e-6)
    assert r.score_text(EASY_EXCEPTION) > r.score_text(HARD_PLAIN)


def test_offsets_are_checked_and_routers_saved_without_them_keep_one_intercept(tmp_path):
    with pytest.raises(ValueError, match="offsets must be one of"):
        make_router("transfer-lsa", offsets="subjects")
    d = subjects_that_differ()
    before = make_router("transfer-lsa", offsets="none").fit(d)
    r = saved_before(before, tmp_path / "before", d, "offsets")  # as a router saved before session 31 wrote it
    assert r.offsets == "none"
