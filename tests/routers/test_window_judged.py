"""`placement_judged` (routers/window.py; issue 22, round 18): a `learned` route with online validation also places
each score by the judged gains (strong − weak outcome) of its nearest judged past requests, read by the same token
vectors as `window-tokens`; `tierwise eval --judged-rate` replays it, and a gateway route gives the same scores
request by request."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.learning.test_reflective_route import wait_for
from tests.routers.test_learned_route import decision_of, learned_config
from tests.routers.test_placement import two_topics
from tests.routers.test_window_tokens import eval_arrival, saved
from tierwise.evaluation.replay import evaluate
from tierwise.routers import load_router
from tierwise.routers.placement import place
from tierwise.routers.window import JUDGED_K, PlacementWindow, judged_draws, judged_stream, stream_placed


def test_judged_gains_of_past_neighbours_move_a_score_and_only_past_verdicts_count():
    d = two_topics(300)
    law = np.array(d.subjects) == "law"
    rng = np.random.default_rng(3)
    s = rng.normal(size=len(d)) * 0.1  # a router that knows nothing of the topics
    v = np.where(law[:, None], [[1.0, 0.0]], [[0.0, 1.0]]) + rng.normal(size=(len(d), 2)) * 0.05
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    judged = judged_draws(len(d), 0.2, 0)
    out = judged_stream(s, v, d.strong, d.weak, judged)
    # law gains 60% of the time, mathematics 20%: once verdicts arrive law questions move up, mathematics down
    order = np.random.default_rng(0).permutation(len(d))
    late = order[len(d) // 2:]
    assert (out - stream_placed(s, v))[late][law[late]].mean() > 0.1
    assert (out - stream_placed(s, v))[late][~law[late]].mean() < -0.1
    # a request's own verdict never moves its own score (it is judged after it was routed), nor an earlier one's
    first = order[:JUDGED_K + 5]
    flipped = d.weak.copy()
    flipped[order[JUDGED_K + 5:]] = 1 - flipped[order[JUDGED_K + 5:]]
    again = judged_stream(s, v, d.strong, flipped, judged)
    np.testing.assert_allclose(again[first], out[first])
    np.testing.assert_allclose(again[order[JUDGED_K + 5]], out[order[JUDGED_K + 5]])
    # no verdicts: exactly window-tokens' placement
    np.testing.assert_allclose(judged_stream(s, v, d.strong, d.weak, np.zeros(len(d), bool)), stream_placed(s, v))


def test_eval_judged_rate_replays_the_route_on_a_saved_router(tmp_path):
    d = two_topics(250)
    path = saved(tmp_path)
    r = load_router(path)
    got = evaluate(d, [path], baselines=False, placement="window-tokens", judged_rate=0.3)[0].scores
    want = judged_stream(r.score(d), r.vectors.encode(d.prompts), d.strong, d.weak, judged_draws(len(d), 0.3, 0))
    np.testing.assert_allclose(got, want)
    plain = evaluate(d, [path], baselines=False, placement="window-tokens")[0].scores
    assert not np.allclose(got, plain)  # seen failing with `judged_rate` not passed on
    assert np.allclose(evaluate(d, [path], baselines=False, placement="none", judged_rate=0.3)[0].scores, r.score(d))


@pytest.mark.parametrize("n, option", [(200, "judged_rate"), (120, "bank_weight")])
def test_cross_validated_rows_place_fold_by_fold_with_the_option(n, option):
    """A CV row is placed fold by fold with judged verdicts (`judged_rate`) or each fold's training bank
    (`bank_weight`, routers/bank.py), as `placed_by_fold` places it, and not as it places without the option."""
    from tierwise.evaluation.replay import placed_by_fold

    d = two_topics(n)
    raw: dict[str, np.ndarray] = {}
    row = evaluate(d, ["transfer-lsa-options"], folds=2, baselines=False, unplaced=raw, placement="window-tokens",
                   **{option: 0.5})[0]
    np.testing.assert_allclose(row.scores, placed_by_fold(raw[row.name], d, 2, 0, "window-tokens",
                                                          "transfer-lsa-options", **{option: 0.5}))
    plain = placed_by_fold(raw[row.name], d, 2, 0, "window-tokens", "transfer-lsa-options")
    assert not np.allclose(row.scores, plain)  # (judged_rate) seen failing with the CV path's option not passed on


def judge_world(rec):
    """The frontier double: answers, and as the judge fails the local answer on law questions."""
    text = json.dumps(rec.body)
    if "You are grading" not in text:
        return Reply(text="frontier answer")
    poor = "local answer" in text and any(w in text for w in ("statute", "contract", "tort", "court", "plaintiff"))
    return Reply(text=f"Checked.\nVERDICT: {'poor' if poor else 'good'}")


def test_a_gateway_route_places_by_its_judged_pairs_as_eval_replays_it(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                       tmp_path):
    path = saved(tmp_path)
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = judge_world
    g = gateway(learned_config(openai_up, anthropic_up, path, placement="window-tokens", shadow_rate=0.5,
                               placement_judged=True,
                               validation={"window": 200, "min_pairs": 20, "rounds": 50, "demote": False}))
    route = g.gateway.resolve("main")
    d = two_topics(40, seed=5)
    arrival = np.random.default_rng(7).permutation(len(d))
    client = oai(g)
    rids, steps = [], []
    for i in arrival:
        resp = client.chat.completions.with_raw_response.create(
            model="main", messages=[{"role": "user", "content": d.prompts[i]}])
        assert wait_for(lambda: not route._background, timeout=30)  # its shadow pair judged before the next request
        rid = resp.headers["x-tierwise-request-id"]
        rids.append(rid)
        steps.append(decision_of(g, rid)[1])
    g.flush()
    pairs = {s.shadow["of"]: s.shadow for s in g.ledger.query(kind="shadow", route="main")}
    judged = np.array([rid in pairs and pairs[rid]["weak"]["outcome"] is not None for rid in rids])
    assert 10 < judged.sum() < len(d) - 10
    strong = np.array([pairs[rid]["strong"]["outcome"] if j else 0.0 for rid, j in zip(rids, judged, strict=True)])
    weak = np.array([pairs[rid]["weak"]["outcome"] if j else 0.0 for rid, j in zip(rids, judged, strict=True)])
    law = np.array(d.subjects)[arrival] == "law"
    assert (strong - weak)[judged & law].min() == 1.0 and (strong - weak)[judged & ~law].max() == 0.0
    raw = np.array([s["detail"]["placement"]["raw_score"] for s in steps])
    live = np.array([s["score"] for s in steps])
    # eval's replay of the same requests: arranged so that its seeded arrival order is the route's
    order, at = eval_arrival(len(d))
    prompts = [d.prompts[arrival[j]] for j in at]
    r = load_router(path)
    replay = place(raw[at], prompts, "window-tokens", r.vectors.encode, 0, (strong[at], weak[at], judged[at]))
    np.testing.assert_allclose(live, replay[order], rtol=1e-5, atol=1e-5)  # seen failing without `verdict` in the route
    unjudged = place(raw[at], prompts, "window-tokens", r.vectors.encode, 0)
    assert not np.allclose(live, unjudged[order])
    # every judged pair is in the route's judged window
    inner = getattr(route, "inner", route)
    assert inner.placement.judged is not None and len(inner.placement.judged) == judged.sum()


def test_placement_judged_is_the_default_and_needs_validation(gateway, openai_up, anthropic_up,  # noqa: F811
                                                               tmp_path):
    from tierwise.policies.learned import LearnedConfig
    from tierwise.policies.learned_config import PLACEMENT_JUDGED

    assert PLACEMENT_JUDGED is True and LearnedConfig.model_fields["placement_judged"].default is True
    path = saved(tmp_path)
    validation = {"window": 200, "min_pairs": 20, "rounds": 50, "demote": False}

    def judged_window(**route):
        g = gateway(learned_config(openai_up, anthropic_up, path, **route))
        inner = getattr(g.gateway.resolve("main"), "inner", g.gateway.resolve("main"))
        assert inner.placement is not None
        return inner.placement.judged

    # round 18 passed its registered rule: a route with validation places by its verdicts unless told not to
    judged = judged_window(shadow_rate=0.1, validation=validation)
    assert judged is not None  # seen failing with PLACEMENT_JUDGED False
    # one gateway key's judged pairs hold at most refit_key_share (0.25) of the judged window, as in the score window
    assert judged.key_cap == 250  # seen failing with the judged window built without the route's key_share (1000)
    assert judged_window(shadow_rate=0.1, validation=validation, placement_judged=False) is None
    assert judged_window() is None  # no validation: no verdicts to average


def test_the_judged_window_survives_a_restart(tmp_path):
    from tierwise.routers.route_memory import RouteMemory

    rng = np.random.default_rng(2)
    vecs = rng.normal(size=(60, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    w, judged = PlacementWindow(100, 5), PlacementWindow(50, 5)
    for i, v in enumerate(vecs):
        w.add(v, float(rng.normal()))
        judged.add(v, float(i % 2))
    path = tmp_path / "m.json"
    RouteMemory(path, "r", 0.3, window=w, judged=judged).write(RouteMemory(path, "r", 0.3, window=w,
                                                                           judged=judged).dump())
    assert len(json.loads(path.read_text())["judged"]["scores"]) == 50
    back = PlacementWindow(50, 5)
    assert RouteMemory(path, "r", 0.3, window=PlacementWindow(100, 5), judged=back).restore()
    for v in vecs[:10]:  # seen failing without the `judged` part in the state file (an empty window: shift 0)
        assert back.shift(v) == judged.shift(v) or abs(back.shift(v) - judged.shift(v)) < 1e-3
    assert any(abs(judged.shift(v)) > 0.05 for v in vecs[:10])
