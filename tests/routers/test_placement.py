"""A batch of traffic scored by a transferred router, placed by its clusters (routers/placement.py; issue 22, round
15: on unseen subjects the router ranks inside a subject as well as in-domain and loses the placement of whole
subjects, bench/RESULTS.md "Transfer round 15"). The default of `tierwise eval`'s batch scoring since round 15's
registered rule passed; a single request's score is unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.evaluation.metrics import apgr, routing_curve
from tierwise.evaluation.replay import evaluate
from tierwise.routers import load_router, make_router, save_router
from tierwise.routers import placement as pl

LAW = ("court", "statute", "plaintiff", "tort", "appeal", "contract", "jury", "verdict", "clause", "liability")
MATH = ("integral", "matrix", "prime", "vector", "derivative", "lemma", "polynomial", "theorem", "graph", "limit")


def two_topics(n_per: int = 200, seed: int = 0) -> OutcomeDataset:
    """Law questions gain from the strong model 60% of the time, mathematics questions 20%."""
    rng = np.random.default_rng(seed)
    prompts, strong, weak, subjects = [], [], [], []
    for topic, words, rate in (("law", LAW, 0.6), ("math", MATH, 0.2)):
        for i in range(n_per):
            prompts.append(f"Question {i}: " + " ".join(rng.choice(words, 6)) + "?")
            gain = rng.random() < rate
            strong.append(1.0)
            weak.append(0.0 if gain else 1.0)
            subjects.append(topic)
    n = len(prompts)
    return OutcomeDataset("topics", prompts, np.array(strong), np.array(weak), [f"t:{i}" for i in range(n)], subjects)


def test_clusters_of_the_traffic_find_its_topics_and_their_means_place_them():
    d = two_topics()
    cl = pl.traffic_clusters(d.prompts)
    topic = np.array(d.subjects) == "law"
    assert len(set(cl.tolist())) == 2  # 400 prompts at 200 a cluster
    assert {len(set(cl[topic].tolist())), len(set(cl[~topic].tolist()))} == {1}
    # a score that ranks nothing inside a topic and places the topics by a small edge under noise
    rng = np.random.default_rng(1)
    s = rng.normal(size=len(d)) + 0.3 * topic
    raw, placed = (float(apgr(routing_curve(x, d.strong, d.weak))) for x in (s, pl.placed(s, cl)))
    assert placed > raw + 0.02
    np.testing.assert_allclose(pl.placed(s, np.zeros(len(s), int)), s)  # one cluster: unchanged
    assert len(set(pl.traffic_clusters(d.prompts[:250]).tolist())) == 1  # fewer than 1.5 clusters' worth


def test_placement_is_checked_and_none_leaves_scores_alone():
    d = two_topics(20)
    s = np.linspace(0, 1, len(d))
    np.testing.assert_allclose(pl.place(s, d.prompts, "none"), s)
    with pytest.raises(ValueError, match="placement must be one of"):
        pl.place(s, d.prompts, "subjects")
    assert pl.places("transfer") and pl.places("transfer-lsa") and pl.places("options", "transfer")
    assert not pl.places("linear") and not pl.places("options", "linear")


def test_eval_places_a_transferred_routers_batch_when_asked_and_scores_as_the_route_by_default(tmp_path):
    # the default figure is the one a gateway route reaches by default: `window-tokens`, which leaves a router
    # without static token vectors (this `transfer-lsa`) as scored
    assert pl.PLACEMENT == "window-tokens"
    d = two_topics()
    r = make_router("transfer-lsa", members=("tfidf-logit-wf",)).fit(two_topics(seed=2))
    path = str(save_router(r, tmp_path / "t"))
    own = load_router(path).score(d)
    placed = evaluate(d, [path], baselines=False, placement="clusters")[0].scores
    np.testing.assert_allclose(placed, pl.place(own, d.prompts, "clusters"))
    assert not np.allclose(placed, own)
    np.testing.assert_allclose(evaluate(d, [path], baselines=False)[0].scores, own)
    np.testing.assert_allclose([r.score_text(p) for p in d.prompts[:5]], own[:5], rtol=1e-6, atol=1e-6)


def test_cross_validated_rows_are_placed_fold_by_fold_and_save_calibrates_on_unplaced_scores(tmp_path):
    import json

    from click.testing import CliRunner

    from tierwise.cli import main
    from tierwise.evaluation.replay import placed_by_fold

    d = two_topics(400)  # 2 folds of 400: two clusters each
    raw: dict[str, np.ndarray] = {}
    row = evaluate(d, ["transfer-lsa"], folds=2, baselines=False, unplaced=raw, placement="clusters")[0]
    np.testing.assert_allclose(row.scores, placed_by_fold(raw[row.name], d, 2, 0, "clusters"))
    assert not np.allclose(row.scores, raw[row.name])
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "strong": s, "weak": w, "subject": t}) + "\n"
                            for p, s, w, t in zip(d.prompts, d.strong, d.weak, d.subjects, strict=True)))
    saved = {}
    for placement in ("clusters", "none"):
        res = CliRunner().invoke(main, ["eval", str(path), "-r", "transfer-lsa-options", "--folds", "2", "--ci", "0",
                                        "--placement", placement, "--save", str(tmp_path / placement)])
        assert res.exit_code == 0, res.output
        saved[placement] = load_router(str(tmp_path / placement) + ".json").train_quantiles
    np.testing.assert_allclose(saved["clusters"], saved["none"])  # a request's score is never placed
