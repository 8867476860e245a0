"""`transfer(trust=…)` (issue 22, round 9): the gain members do not learn from a subject whose strong model fails
about as often as the weak one (an artefact of how the benchmark was run, as GPT-4's one-token MMLU maths
answers), while the weak-fails member still does; the setting is saved with the router."""

from __future__ import annotations

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers import load_router, make_router, save_router
from tierwise.routers.transfer import trusted_rows

CLEAN = ("alpha", "beta")
BROKEN = ("broken", "mangled")


def artefact_data(n: int = 40) -> OutcomeDataset:
    """In the clean subjects a question about a "zeta integral" fails the weak model and the strong one answers it
    (gain 1); in the `BROKEN` subjects the recorded strong answers fail whenever the weak ones do (gain 0 there)."""
    prompts, strong, weak, subjects = [], [], [], []
    for subject in (*CLEAN, *BROKEN):
        for i in range(n):
            hard = i % 2 == 0
            prompts.append(f"In {subject} case {i}, evaluate the zeta integral of order {i % 7}." if hard else
                           f"In {subject} case {i}, name the colour of item {i % 5}.")
            weak.append(0.0 if hard else 1.0)
            strong.append(0.0 if hard and subject in BROKEN else 1.0)
            subjects.append(subject)
    return OutcomeDataset("mc", prompts, np.array(strong), np.array(weak), [f"mc:{i}" for i in range(len(prompts))],
                          subjects)


def test_a_subject_whose_strong_model_fails_as_often_as_the_weak_is_not_trusted():
    src = np.array(["mmlu"] * 120 + ["gsm8k"] * 10)
    subjects = ["ok"] * 60 + ["bad"] * 60 + [""] * 10
    strong = np.r_[np.ones(50), np.zeros(10), np.r_[np.ones(25), np.zeros(35)], np.zeros(10)]
    weak = np.r_[np.ones(30), np.zeros(30), np.r_[np.ones(20), np.zeros(40)], np.zeros(10)]
    keep = trusted_rows(src, subjects, strong, weak, 0.8)
    assert keep[:60].all() and not keep[60:120].any()  # bad: strong fails 35/60, weak 40/60 (ratio 0.875)
    assert keep[120:].all()  # too few queries to judge
    assert trusted_rows(src, subjects, strong, weak, 0.0).all()


def _gain_lift(router) -> float:
    """How much higher the gain ridge member scores a zeta question than a colour one, in a subject never seen."""
    p = ["In omega case 3, evaluate the zeta integral of order 2.", "In omega case 3, name the colour of item 2."]
    j = router.members.index("tfidf-ridge-gain")
    s = router._member_scores(router._fit_dict(), *router._features(p), p)
    return float(s[0, j] - s[1, j])


def test_the_gain_member_learns_only_from_trusted_subjects(tmp_path):
    data = artefact_data()
    plain = make_router("transfer-lsa").fit(data)
    trusting = make_router("transfer-lsa", trust=0.8).fit(data)
    # the broken subject's zeta questions (gain 0) dilute what the clean subjects teach (gain 1)
    assert _gain_lift(trusting) > 1.2 * _gain_lift(plain) > 0
    save_router(trusting, tmp_path / "r")
    back = load_router(tmp_path / "r")
    assert back.trust == 0.8
    prompt = "In omega case 3, evaluate the zeta integral of order 2."
    assert abs(back.score_text(prompt) - trusting.score_text(prompt)) < 1e-9
