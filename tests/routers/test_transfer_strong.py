"""The `transfer` router's weak-fails member discounted where the strong model is expected to fail too
(`strong="discount"`, issue 22, session 33; the default since round 14's registered rule passed, bench/RESULTS.md
"Transfer round 14"): a question both models fail gains nothing from the strong model, so it ranks below one only the
weak model fails."""

from __future__ import annotations

import numpy as np
import pytest

from tests.routers.saved import saved_before
from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers import load_router, make_router, save_router

SUBJECTS = tuple(f"s{i}" for i in range(6))
ONE = ("tfidf-logit-wf",)


def three_kinds(n_per: int = 18) -> OutcomeDataset:
    """In every subject a third of the questions carry "alpha" (the weak model fails, the strong one answers), a third
    "beta" (both fail), a third "gamma" (both answer)."""
    prompts, strong, weak, subjects = [], [], [], []
    for subject in SUBJECTS:
        for i in range(n_per):
            kind = ("alpha", "beta", "gamma")[i % 3]
            prompts.append(f"Question {i} of {subject} about {kind}?")
            strong.append(0.0 if kind == "beta" else 1.0)
            weak.append(1.0 if kind == "gamma" else 0.0)
            subjects.append(subject)
    n = len(prompts)
    return OutcomeDataset("mc", prompts, np.array(strong), np.array(weak), [f"mc:{i}" for i in range(n)], subjects)


def kind_means(router, d: OutcomeDataset) -> dict[str, float]:  # noqa: ANN001
    s = router.score(d)
    return {k: float(np.mean([x for x, p in zip(s, d.prompts, strict=True) if k in p])) for k in ("alpha", "beta",
                                                                                                    "gamma")}


def test_discount_ranks_what_only_the_weak_model_fails_above_what_both_fail_and_round_trips(tmp_path):
    d = three_kinds()
    plain = make_router("transfer-lsa", members=ONE, strong="ignored").fit(d)
    discounted = make_router("transfer-lsa", members=ONE, strong="discount").fit(d)
    assert plain.strong == "ignored"
    p, q = kind_means(plain, d), kind_means(discounted, d)
    assert abs(p["alpha"] - p["beta"]) < 0.05  # the weak model fails both alike
    assert q["alpha"] > q["beta"] + 0.2 and q["beta"] > q["gamma"] - 0.05
    one = [discounted.score_text(x) for x in d.prompts[:12]]
    np.testing.assert_allclose(one, discounted.score(d)[:12], rtol=1e-6, atol=1e-6)
    r = load_router(save_router(discounted, tmp_path / "discounted"))
    assert r.strong == "discount"
    np.testing.assert_allclose(r.score(d), discounted.score(d), rtol=1e-6, atol=1e-6)


def test_strong_is_checked_and_routers_saved_without_it_ignore_the_strong_model(tmp_path):
    with pytest.raises(ValueError, match="strong must be one of"):
        make_router("transfer-lsa", strong="both")
    d = three_kinds()
    before = make_router("transfer-lsa", strong="ignored").fit(d)
    r = saved_before(before, tmp_path / "before", d, "strong")  # as a router saved before session 33 wrote it
    assert r.strong == "ignored"


def test_the_default_transfer_router_discounts_by_the_strong_models_failures():
    """Round 14 (session 33): `transfer` and `transfer-lsa` default to `strong="discount"`."""
    assert make_router("transfer-lsa").strong == "discount"
    assert make_router("transfer").base.strong == "discount"
    d = three_kinds()
    default = make_router("transfer-lsa").fit(d)
    np.testing.assert_array_equal(default.score(d), make_router("transfer-lsa", strong="discount").fit(d).score(d))
    assert not np.allclose(default.score(d), make_router("transfer-lsa", strong="ignored").fit(d).score(d))
