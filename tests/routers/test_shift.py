"""A saved router carries its training distribution; prompts like the training ones land uniformly in
it, prompts unlike them land far; the window's verdict has hysteresis; `tierwise eval` says when a
data set is unlike what a saved router was trained on; a learned route's config is validated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tierwise.cli import main
from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers import load_router, make_router, save_router
from tierwise.routers.guard import RouteGuard
from tierwise.routers.shift import ShiftWindow, attach_profile

TOPICS = ["invoice", "refund", "delivery", "password", "account", "subscription", "warranty", "discount"]
ACTIONS = ["How do I change my", "Why was I charged for my", "Can you help me cancel my", "Where can I find my",
           "I cannot open my", "Please explain the terms of my"]
OTHER = ["Compose a sonnet about the {} moon over a frozen lake at {} o'clock.",
         "Translate the phrase 'the {} cat sleeps' into Latin and explain case {} endings.",
         "Derive the gradient of a softmax layer with {} classes and {} temperature."]


def support(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{ACTIONS[rng.integers(len(ACTIONS))]} {TOPICS[rng.integers(len(TOPICS))]} number {rng.integers(1000)} "
            f"from order {rng.integers(100)}?" for _ in range(n)]


def other(n: int) -> list[str]:
    return [OTHER[i % 3].format(i, i * 7 % 13) for i in range(n)]


def dataset(prompts: list[str], seed: int = 0) -> OutcomeDataset:
    rng = np.random.default_rng(seed)
    weak = (rng.random(len(prompts)) < 0.6).astype(float)
    return OutcomeDataset("support", prompts, np.ones(len(prompts)), weak, [str(i) for i in range(len(prompts))])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    r = attach_profile(make_router("linear").fit(dataset(support(400, 0))), support(400, 0))
    return save_router(r, tmp_path_factory.mktemp("r") / "support")


def test_the_profile_survives_save_and_tells_near_from_far(saved):
    r = load_router(saved)
    assert r.profile is not None and r.profile.n_train == 400 and set(r.profile.spaces) == {"lsa"}
    near = r.profile.percentiles(support(300, 1))["lsa"]
    far = r.profile.percentiles(other(60))["lsa"]
    assert np.mean(near > 0.95) < 0.15 and 0.3 < np.mean(near) < 0.7  # about uniform: like the training data
    assert np.mean(far > 0.95) > 0.9
    assert r.profile.percentile_one(other(1)[0])["lsa"] == pytest.approx(far[0])


def test_a_router_saved_without_a_profile_loads_with_none(tmp_path):
    r = load_router(save_router(make_router("linear").fit(dataset(support(50, 0))), tmp_path / "old"))
    assert r.profile is None


def test_the_window_verdict_has_hysteresis_and_a_bound():
    w = ShiftWindow(window=40, min_requests=10, demote_above=0.25, promote_below=0.15)
    assert not any(w.add(0.5).off for _ in range(40))
    flips = [w.add(0.99).off for _ in range(40)]
    first = flips.index(True)
    assert first + 1 <= int(0.25 * 40) + 1  # demoted within a quarter of the window plus one request
    back = [w.add(0.5).off for _ in range(40)]
    assert back[0] and not back[-1]
    up = back.index(False)
    assert up + 1 >= 40 - int(0.15 * 40)  # hysteresis: the far share must fall below 15%, not just 25%
    with pytest.raises(ValueError):
        ShiftWindow(demote_above=0.1, promote_below=0.2)


def test_guard_demotes_on_far_traffic_and_refits_the_threshold_on_recent_scores(saved):
    r = load_router(saved)
    g = RouteGuard(r.profile, window=ShiftWindow(window=50, min_requests=20), threshold=99.0, target_share=0.3,
                   refit_threshold=True, refit_min=100, refit_window=200)
    states = [g.observe(p, r.score_text(p)) for p in support(150, 2)]
    assert not any(s.demoted for s in states)
    scores = np.array([r.score_text(p) for p in support(150, 2)])
    assert states[-1].threshold_source.startswith("recent traffic")
    assert np.mean(scores[-140:] >= states[-1].threshold) == pytest.approx(0.3, abs=0.08)
    far = [g.observe(p, r.score_text(p)) for p in other(30)]
    assert far[-1].demoted and "off the router's training distribution" in far[-1].reason
    assert sum(s.changed for s in far) == 1


def test_a_guard_that_only_measures_shift_refits_the_threshold_on_far_traffic(saved):
    # Before (session 36): with `shift: {demote: false}` (measure and record only; docs/routers.md: "only scores of
    # requests that arrive while the route is not demoted for shift count") far traffic still kept every score out
    # of the re-fit: the route went on routing far traffic by score at the training quantile, a router set for 30%
    # sent 0% of a user's own shifted traffic to the strong tier, with `threshold_source: training` for good.
    r = load_router(saved)
    g = RouteGuard(r.profile, window=ShiftWindow(window=50, min_requests=20), demote=False, threshold=99.0,
                   target_share=0.3, refit_threshold=True, refit_min=100, refit_window=200)
    states = [g.observe(p, r.score_text(p)) for p in other(240)]
    assert not any(s.demoted for s in states) and states[-1].detail == {"monitor_only_off": True}
    assert states[-1].threshold_source.startswith("recent traffic"), states[-1].threshold_source
    scores = np.array([r.score_text(p) for p in other(240)])
    assert np.mean(scores[-200:] >= states[-1].threshold) == pytest.approx(0.3, abs=0.1)
    # demoting for shift: far traffic goes to the fallback, and its scores still stay out of the threshold
    g = RouteGuard(r.profile, window=ShiftWindow(window=50, min_requests=20), threshold=99.0, target_share=0.3,
                   refit_threshold=True, refit_min=100, refit_window=200)
    states = [g.observe(p, r.score_text(p)) for p in other(240)]
    assert states[-1].demoted and states[-1].threshold_source == "training"


def test_eval_warns_that_a_router_has_not_seen_data_like_yours(saved, tmp_path):
    mine = tmp_path / "mine.jsonl"
    mine.write_text("".join(json.dumps({"prompt": p, "strong": 1, "weak": i % 2}) + "\n"
                            for i, p in enumerate(other(40))))
    res = CliRunner().invoke(main, ["eval", str(mine), "-r", str(saved), "--ci", "0", "--json"])
    assert res.exit_code == 0, res.output
    check = json.loads(res.output)["saved_routers"][0]
    assert check["far_share_lsa"] > 0.9
    assert any("has not seen data like yours" in w for w in check["warnings"])
    near = tmp_path / "near.jsonl"
    near.write_text("".join(json.dumps({"prompt": p, "strong": 1, "weak": i % 2}) + "\n"
                            for i, p in enumerate(support(200, 3))))
    ok = json.loads(CliRunner().invoke(main, ["eval", str(near), "-r", str(saved), "--ci", "0", "--json"]).output)
    assert not any("not seen" in w for w in ok["saved_routers"][0]["warnings"])


def test_eval_save_stores_the_profile(tmp_path):
    fixture = Path(__file__).parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl"
    res = CliRunner().invoke(main, ["eval", str(fixture), "-r", "linear", "--no-cv", "--save", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert load_router(tmp_path / "r").profile.n_train == 48
