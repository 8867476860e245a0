"""`request_model.frontier_label`: the text model is pooled over every task type, so a frontier type that never moved
local, with a dozen rows among hundreds of other types', is rated near the pooled level whatever its own verdicts
say. With `frontier_label: w` the type label enters the kernel (weight w) only for types the boundary has never
moved: such a type's own verdicts set its requests' level, while a type that has moved (local, or moved back) is
read by its words alone. Scripted streams through `LearningLoop` (the code the `reflective` route and the replay both
run)."""

from __future__ import annotations

import pytest

from tierwise.learning.loop import LearningLoop, LoopSettings

# one prompt template for every type: the text model cannot tell them apart by their words
PROMPT = "Please answer question {j} about the {w} and give a short reason for the answer."
WORDS = ["cat", "dog", "tree", "house", "river", "bread", "cloud", "stone", "light", "chair", "music", "field"]


def make_loop(**model) -> LearningLoop:
    return LearningLoop("r", LoopSettings.model_validate({
        "schedule": {"first_uses": 1000, "shadow_stop_after": 10_000},  # every request judged
        "boundary": {"quality_target": 0.75, "credible": 0.6, "discount": 1.0},
        "request_model": {"kind": "text", "weight": 1.0, "min_rows": 20, "refit_every": 5, "alpha": 3.0, **model}}))


def feed(loop: LearningLoop, task_type: str, n: int, good_every: int, start: int = 0) -> None:
    """n requests of one type; every request judged; one in `good_every` rejected."""
    for j in range(start, start + n):
        rid = f"{task_type}-{j}"
        plan = loop.plan(task_type, rid, text=PROMPT.format(j=j, w=WORDS[j % len(WORDS)]))
        assert plan.judge
        loop.verdict(task_type, 0.0 if j % good_every == good_every - 1 else 1.0, request_id=rid)


def trained(**model) -> LearningLoop:
    loop = make_loop(**model)
    feed(loop, "good", 120, 10)  # 0.90: moves local, and fills the model's rows
    feed(loop, "weak", 24, 2)  # 0.50 on 24 verdicts: never moves
    assert loop.boundary.tier("good") == "local" and loop.boundary.tier("weak") == "frontier"
    return loop


def probe(loop: LearningLoop, task_type: str) -> str:
    return loop.plan(task_type, f"probe-{task_type}", text=PROMPT.format(j=999, w="window")).tier


def estimate(loop: LearningLoop, task_type: str) -> float:
    rm = loop.request_model
    q = rm.estimate(rm.features(PROMPT.format(j=999, w="window"), task_type))
    assert q is not None
    return q


def test_without_the_label_a_never_moved_frontier_type_is_served_locally_at_the_pooled_level() -> None:
    loop = trained()
    assert probe(loop, "weak") == "local"  # the pooled model rates its requests like the good type's
    assert probe(loop, "good") == "local"


@pytest.mark.parametrize("w", [0.3, 1.0])
def test_the_label_of_a_never_moved_type_sends_its_requests_to_the_frontier(w) -> None:
    loop = trained(frontier_label=w)
    rm = loop.request_model
    assert rm.unlabelled == {"good"}  # the type that moved local carries no label
    per_frontier = rm.coef_dense[2]
    assert set(per_frontier) == {"weak"} and per_frontier["weak"] < -0.1
    assert estimate(loop, "weak") < 0.75 <= estimate(loop, "good")
    assert probe(loop, "weak") == "frontier"
    assert probe(loop, "good") == "local"


def test_a_type_that_moves_loses_its_label_at_once() -> None:
    loop = trained(frontier_label=1.0)
    rm = loop.request_model
    before = estimate(loop, "weak")
    # the weak type's answers turn good: it moves local; until the next refit its requests are read by their words
    j = 1000
    while loop.boundary.tier("weak") == "frontier":
        rid = f"weak-{j}"
        loop.plan("weak", rid, text=PROMPT.format(j=j, w=WORDS[j % len(WORDS)]))
        loop.verdict("weak", 1.0, request_id=rid)
        j += 1
        assert j < 1200
    assert "weak" in rm.unlabelled
    ce, ct, cf = rm.coef_dense
    if "weak" in cf:  # (no refit since the move): its coefficient is no longer added
        rm_words = rm.estimate(rm.features(PROMPT.format(j=999, w="window"), "weak"))
        assert rm_words == pytest.approx(estimate(loop, "other-type"))
    rm.fit()
    assert "weak" not in rm.coef_dense[2]
    assert estimate(loop, "weak") > before


def test_off_by_default_bad_values_refused_and_a_restore_refits_the_same_model(tmp_path) -> None:
    from pydantic import ValidationError

    from tierwise.learning.request_model_settings import RequestModelSettings

    assert RequestModelSettings().frontier_label is None
    assert not make_loop().request_model.dense
    for bad in (0.0, -1.0, 11.0):
        with pytest.raises(ValidationError):
            RequestModelSettings(frontier_label=bad)
    loop = trained(frontier_label=1.0)
    path = tmp_path / "state.json"
    loop.save(path)
    again = make_loop(frontier_label=1.0)
    assert again.restore(path)
    assert again.request_model.unlabelled == {"good"}  # from the restored boundary
    assert set(again.request_model.coef_dense[2]) == {"weak"}
    for t in ("weak", "good"):
        assert estimate(again, t) == pytest.approx(estimate(loop, t), abs=1e-6)
    plain = make_loop()
    assert plain.restore(path)
    assert not plain.request_model.rows  # rows saved with labels are not read by a model without them


def test_the_fit_is_ridge_on_the_words_plus_the_label_of_never_moved_types() -> None:
    """The estimate is the dual ridge solution with kernel X Xᵀ + w L (L: 1 between two rows of one never-moved type),
    written out here from the rows (TF-IDF with the rows' IDF, L2-normalised)."""
    import numpy as np

    from tierwise.routers.features import bucket_counts, token_hashes

    w = 1.0
    loop = trained(frontier_label=w)
    rm = loop.request_model
    rm.fit()
    rows = list(rm.rows)
    n, b = len(rows), rm.settings.n_buckets
    df = np.zeros(b)
    for r in rows:
        df[r[0]] += 1.0
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0

    def vec(idx, cnt):
        v = np.zeros(b)
        v[idx] = (1.0 + np.log(cnt.astype(np.float64))) * idf[idx]
        return v / np.linalg.norm(v)

    x = np.stack([vec(r[0], r[1]) for r in rows])
    label = np.array([r[4] if r[4] not in rm.unlabelled else None for r in rows], dtype=object)
    same = np.array([[a is not None and a == c for c in label] for a in label], dtype=float)
    y = np.array([r[2] for r in rows])
    coef = np.linalg.solve(x @ x.T + w * same + rm.settings.alpha * np.eye(n), y - y.mean())
    idx, cnt = bucket_counts(token_hashes(PROMPT.format(j=999, w="window")), b)
    probe_x = vec(idx, cnt)
    for t in ("weak", "good"):
        want = y.mean() + float(x @ probe_x @ coef) + w * float(coef[label == t].sum())
        assert estimate(loop, t) == pytest.approx(min(1.0, max(0.0, want)), abs=1e-4)
