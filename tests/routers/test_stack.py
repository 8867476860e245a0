"""The stacked router learns a known signal, picks its settings by inner CV, survives save/load
exactly, and scores one request as it scores a batch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers import load_router, make_router, save_router
from tierwise.routers.features import SHAPE_NAMES, shape_features
from tierwise.routers.stack import BLEND, MEMBERS, TreeEnsemble, stack

HARD = ["Prove that {a} and {b} are coprime whenever {a} divides {c}.",
        "If a train goes {a} miles at {b} mph then {c}% faster, how long does each leg take in total?",
        "Derive the closed form of T(n) = {a}T(n/{b}) + n^{c} and justify every step."]
EASY = ["What is the capital of country number {a}?", "Name the colour of fruit {a} in the basket {b}.",
        "Say hello to guest {a} politely."]


def synthetic(n: int = 240, seed: int = 0) -> OutcomeDataset:
    """Hard templates: the strong model is right and the weak one mostly wrong; easy: both right."""
    rng = np.random.default_rng(seed)
    prompts, strong, weak = [], [], []
    for i in range(n):
        hard = i % 2 == 0
        t = (HARD if hard else EASY)[int(rng.integers(3))]
        prompts.append(t.format(a=int(rng.integers(2, 999)), b=int(rng.integers(2, 99)), c=int(rng.integers(2, 9))))
        strong.append(1.0)
        weak.append(float(rng.random() < (0.2 if hard else 0.9)))
    return OutcomeDataset("synthetic", prompts, np.array(strong), np.array(weak), [f"q{i}" for i in range(n)],
                          ["hard" if i % 2 == 0 else "easy" for i in range(n)])


@pytest.fixture(scope="module")
def data():
    return synthetic()


@pytest.fixture(scope="module")
def fitted(data):
    return make_router("stack-lsa").fit(data.take(range(0, 200)))


def test_stack_learns_the_signal_on_unseen_prompts(fitted, data):
    test = data.take(range(200, 240))
    s = fitted.score(test)
    hard = np.array([x == "hard" for x in test.subjects])
    assert s[hard].min() > s[~hard].max()
    assert set(fitted.params) == set(MEMBERS) and fitted.weights.min() >= 0 and fitted.weights.sum() > 0
    assert fitted.blend in BLEND
    assert all(v > 0.6 for v in fitted.inner_apgr.values())  # every member found the signal in inner CV


def test_stack_round_trip_is_exact_and_score_text_matches(fitted, data, tmp_path):
    test = data.take(range(200, 240))
    s = fitted.score(test)
    path = save_router(fitted, tmp_path / "stack")
    assert json.loads(path.read_text())["kind"] == "stack"
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    r2 = load_router(path)
    np.testing.assert_allclose(r2.score(test), s, rtol=0, atol=1e-9)
    for p, x in zip(test.prompts[:10], s[:10], strict=True):
        assert r2.score_text(p) == pytest.approx(x, abs=1e-5)
        assert fitted.score_text(p) == pytest.approx(x, abs=1e-5)
    assert r2.train_quantiles is not None


def test_stack_with_fewer_members_and_graded_outcomes(data, tmp_path):
    graded = OutcomeDataset("graded", data.prompts, data.strong * 9 + 1, data.weak * 6 + 2, data.groups)
    r = stack("lsa", members=("tfidf-logit", "trees")).fit(graded.take(range(200)))
    s = r.score(graded.take(range(200, 240)))
    hard = np.arange(200, 240) % 2 == 0
    assert s[hard].mean() > s[~hard].mean()
    r2 = load_router(save_router(r, tmp_path / "g"))
    np.testing.assert_allclose(r2.score(graded.take(range(200, 240))), s, atol=1e-9)
    with pytest.raises(ValueError, match="unknown stack members"):
        stack("lsa", members=("nope",))


def test_tiny_dataset_falls_back_to_equal_weights(data):
    r = make_router("stack-lsa").fit(data.take(range(12)))
    assert np.all(r.weights == 1.0)
    assert np.isfinite(r.score(data.take(range(12, 20)))).all()


def test_tree_export_matches_scikit_learn():
    from sklearn.ensemble import HistGradientBoostingRegressor

    from tierwise.routers.stack import TREE_PARAMS

    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    y = (x[:, 0] > 0) * 1.0 + 0.5 * x[:, 1] * (x[:, 2] > 0.3) + rng.normal(0, 0.1, 400)
    ours = TreeEnsemble.fit(x, y)
    ref = HistGradientBoostingRegressor(**TREE_PARAMS).fit(x, y)
    np.testing.assert_allclose(ours.predict(x), ref.predict(x), atol=1e-6)
    np.testing.assert_allclose(ours.predict(x[3]), ref.predict(x[3:4]), atol=1e-6)


def test_shape_features_are_fixed_length_and_count_what_they_say():
    f = dict(zip(SHAPE_NAMES, shape_features("Which is NOT prime? It costs $3.50 per item.\nA. 2\nB. 9\nC. 5\nD. 7\nAnswer:"),
                 strict=True))
    assert f["options"] == 4 and f["numeric_options"] == 4 and f["negation"] == 1 and f["decimals"] == 1
    assert f["cue:per"] == 1 and f["cue:$"] == 1
    assert len(shape_features("")) == len(SHAPE_NAMES)


def test_a_number_too_large_for_a_float_is_left_out_not_a_crash(fitted):
    csv = "Sum these: " + ",".join(["1"] * 400) + " and 2.5"
    f = dict(zip(SHAPE_NAMES, shape_features(csv), strict=True))
    assert f["numbers"] == 1 and f["decimals"] == 1 and np.isfinite(shape_features(csv)).all()
    assert np.isfinite(fitted.score_text(csv))


def test_few_question_groups_fall_back_to_defaults_instead_of_failing(data):
    few = data.take(range(30))
    few.groups = ["g0", "g1", "g2"] * 10  # 30 prompts, but only three questions for five inner folds
    r = make_router("stack-lsa").fit(few)
    assert np.all(r.weights == 1.0) and np.isfinite(r.score(data.take(range(30, 40)))).all()
