"""`window-tokens` (routers/window.py; issue 22, round 17): the windowed placement with neighbours read by the
router's own static token vectors (what `transfer`'s options member carries) instead of its training-profile LSA —
the route, `tierwise eval --placement window-tokens` on a saved router and on CV folds all read prompts the same way;
routers without token vectors are left as scored."""

from __future__ import annotations

import numpy as np
import pytest

from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.routers.test_placement import two_topics
from tierwise.evaluation.replay import evaluate, placed_by_fold
from tierwise.routers import load_router, make_router, save_router
from tierwise.routers import placement as pl
from tierwise.routers.shift import attach_profile
from tierwise.routers.window import WINDOWS, route_placement, stream_placed


def saved(tmp_path, spec: str = "transfer-lsa-options") -> str:
    train = two_topics(seed=2)
    r = make_router(spec, members=("tfidf-logit-wf",)).fit(train)
    attach_profile(r, train.prompts)
    return str(save_router(r, tmp_path / spec))


def test_eval_and_the_route_read_neighbours_by_the_routers_token_vectors(tmp_path):
    d = two_topics(700)
    path = saved(tmp_path)
    r = load_router(path)
    own = r.score(d)
    got = evaluate(d, [path], baselines=False, placement="window-tokens")[0].scores
    tokens = r.vectors.encode(d.prompts)
    assert tokens.shape == (len(d), 384)
    np.testing.assert_allclose(got, stream_placed(own, tokens, seed=0))  # seen failing with the profile's LSA
    lsa = evaluate(d, [path], baselines=False, placement="window")[0].scores
    assert not np.allclose(got, lsa) and not np.allclose(got, own)
    route = route_placement("window-tokens", r, "main")
    assert route is not None
    order = np.random.default_rng(0).permutation(len(d))
    live = np.array([route.place(d.prompts[i], r.score_text(d.prompts[i])) for i in order])
    np.testing.assert_allclose(live, got[order], rtol=1e-5, atol=1e-5)
    # a transferred router without token vectors (`transfer-lsa`) is left as scored, by eval and by a route
    bare = saved(tmp_path, "transfer-lsa")
    np.testing.assert_allclose(evaluate(d, [bare], baselines=False, placement="window-tokens")[0].scores,
                               load_router(bare).score(d))
    assert route_placement("window-tokens", load_router(bare), "main") is None
    with pytest.raises(ValueError, match="placement must be one of"):
        route_placement("window-lsa", r, "main")
    assert "window-tokens" in WINDOWS and "window-tokens" in pl.PLACEMENTS


def test_cross_validated_rows_read_each_fold_as_its_fitted_router_would():
    d = two_topics(300)
    raw: dict[str, np.ndarray] = {}
    row = evaluate(d, ["transfer-lsa-options"], folds=2, baselines=False, unplaced=raw, placement="window-tokens")[0]
    np.testing.assert_allclose(row.scores, placed_by_fold(raw[row.name], d, 2, 0, "window-tokens",
                                                          "transfer-lsa-options"))
    assert not np.allclose(row.scores, raw[row.name])
    # the fold's encoder is the fitted router's own vectors
    fitted = make_router("transfer-lsa-options").fit(d)
    enc = pl.window_encoder("window-tokens", train_prompts=d.prompts, spec="transfer-lsa-options")
    assert enc is not None
    np.testing.assert_allclose(enc(d.prompts[:20]), fitted.vectors.encode(d.prompts[:20]), rtol=1e-6, atol=1e-6)
    # `transfer-lsa` has no token vectors: its CV row is left as scored
    raw2: dict[str, np.ndarray] = {}
    row2 = evaluate(d, ["transfer-lsa"], folds=2, baselines=False, unplaced=raw2, placement="window-tokens")[0]
    np.testing.assert_allclose(row2.scores, raw2[row2.name])


def test_a_gateway_route_with_window_tokens_places_by_the_token_vectors(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                        tmp_path):
    from tests.doubles import Reply
    from tests.routers.test_learned_route import decision_of, learned_config

    path = saved(tmp_path)
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    g = gateway(learned_config(openai_up, anthropic_up, path, placement="window-tokens"))
    r, d = load_router(path), two_topics(15)
    steps = []
    for p in d.prompts:
        resp = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": p}])
        steps.append(decision_of(g, resp.headers["x-tierwise-request-id"])[1])
    raw = np.array([s["detail"]["placement"]["raw_score"] for s in steps])
    placed = np.array([s["score"] for s in steps])
    expected = route_placement("window-tokens", r, "main")
    assert expected is not None
    np.testing.assert_allclose(placed, [expected.place(p, x) for p, x in zip(d.prompts, raw, strict=True)],
                               rtol=1e-5, atol=1e-5)
    assert not np.allclose(placed[20:], raw[20:])
    lsa = route_placement("window", r, "main")
    assert lsa is not None
    assert not np.allclose(placed, [lsa.place(p, x) for p, x in zip(d.prompts, raw, strict=True)])
    # the default (round 17 passed its registered rule): a route configured without `placement` places this way
    dflt = gateway(learned_config(openai_up, anthropic_up, path))
    resp = oai(dflt).chat.completions.with_raw_response.create(
        model="main", messages=[{"role": "user", "content": d.prompts[0]}])
    assert decision_of(dflt, resp.headers["x-tierwise-request-id"])[1]["detail"]["placement"]["window"] == 1


def test_window_tokens_is_the_default_of_eval_and_of_the_route(tmp_path):
    from tierwise.policies.learned import LearnedConfig
    from tierwise.policies.learned_config import PLACEMENT

    assert PLACEMENT == "window-tokens" and LearnedConfig.model_fields["placement"].default == "window-tokens"
    assert pl.PLACEMENT == "window-tokens"
    d = two_topics(300)
    path = saved(tmp_path)
    r = load_router(path)
    np.testing.assert_allclose(evaluate(d, [path], baselines=False)[0].scores,  # seen failing with PLACEMENT "none"
                               stream_placed(r.score(d), r.vectors.encode(d.prompts), seed=0))


def eval_arrival(n: int) -> tuple[np.ndarray, np.ndarray]:
    """`tierwise eval`'s seeded arrival order of `n` requests (seed 0) and its inverse: a route fed the requests in
    `arrival[at]` order sees what eval's replay sees."""
    order = np.random.default_rng(0).permutation(n)
    at = np.empty(n, int)
    at[order] = np.arange(n)
    return order, at

