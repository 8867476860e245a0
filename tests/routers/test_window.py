"""The windowed placement (routers/window.py; issue 22, round 16): a request's score pulled towards the mean score of
its nearest neighbours among the requests a route has already seen — bounded, past requests only, one key's share
capped, kept across a restart; `tierwise eval --placement window` replays a batch through it in a random arrival
order."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.routers.test_placement import two_topics
from tierwise.evaluation.metrics import apgr, routing_curve
from tierwise.evaluation.replay import evaluate, placed_by_fold
from tierwise.routers import load_router, make_router, save_router
from tierwise.routers import placement as pl
from tierwise.routers.route_memory import RouteMemory
from tierwise.routers.shift import attach_profile
from tierwise.routers.window import PlacementWindow, route_placement, stream_placed


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def topic_stream(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two topics (vectors near one of two directions), gain 1 on 60% of the first's questions and 20% of the
    second's; a score that ranks nothing inside a topic and places the topics by a small edge under noise."""
    rng = np.random.default_rng(seed)
    topic = rng.random(n) < 0.5
    centres = unit(rng.normal(size=(2, 16)))
    vecs = unit(centres[topic.astype(int)] + 0.3 * rng.normal(size=(n, 16))).astype(np.float32)
    weak = np.where(rng.random(n) < np.where(topic, 0.6, 0.2), 0.0, 1.0)
    score = rng.normal(size=n) + 0.3 * topic
    return vecs, score, np.ones(n), weak


def test_the_window_places_topics_by_their_neighbours_mean():
    vecs, s, strong, weak = topic_stream()
    placed = PlacementWindow(size=300, k=50).stream(vecs, s)
    raw, got = (float(apgr(routing_curve(x, strong, weak))) for x in (s, placed))
    assert got > raw + 0.02  # seen failing with WEIGHT 0 (no placement)
    np.testing.assert_allclose(PlacementWindow(size=300, k=50, weight=0.0).stream(vecs, s), s)


def test_only_past_requests_count_and_the_first_k_are_left_alone():
    vecs, s, _, _ = topic_stream()
    a = PlacementWindow(size=200, k=20).stream(vecs, s)
    later = s.copy()
    later[400:] = -later[400:] * 5  # what comes later never changes an earlier request's placed score
    b = PlacementWindow(size=200, k=20).stream(vecs, later)
    np.testing.assert_allclose(a[:400], b[:400])
    bumped = s.copy()
    bumped[300] += 1.0  # a request is placed by the requests before it, never by itself
    assert PlacementWindow(size=200, k=20).stream(vecs, bumped)[300] - a[300] == pytest.approx(1.0)
    np.testing.assert_allclose(a[:20], s[:20])  # fewer than k before them: unchanged
    assert not np.allclose(a[20:40], s[20:40])
    # the stream's order is the arrival order: scores come back in input order, placed as they arrived
    order = np.random.default_rng(3).permutation(len(s))
    c = PlacementWindow(size=200, k=20).stream(vecs, s, order)
    d = PlacementWindow(size=200, k=20).stream(vecs[order], s[order])
    np.testing.assert_allclose(c[order], d)
    np.testing.assert_allclose(stream_placed(s, vecs, seed=3, size=200, k=20), c)


def test_the_window_is_bounded_and_one_key_holds_at_most_its_share():
    vecs, s, _, _ = topic_stream(3000)
    w = PlacementWindow(size=100, k=10, key_share=0.25)
    for i in range(3000):
        w.place(vecs[i], s[i], "flood" if i % 10 else ("other" if i % 20 else ""))
    assert len(w) == 100 and w.vectors is not None and w.vectors.shape == (100, 16) and w.scores.shape == (100,)
    keys = w.state()["keys"]  # each named key at its cap (25); the unnamed entry holds the rest
    assert keys.count("flood") == 25 and keys.count("other") == 25 and keys.count("") == 50
    # requests without a key name share one uncapped entry (a gateway without keys)
    anon = PlacementWindow(size=100, k=10, key_share=0.25)
    for i in range(500):
        anon.place(vecs[i], s[i])
    assert len(anon) == 100
    with pytest.raises(ValueError):
        PlacementWindow(size=10, k=20)
    # a NaN score or vector is not kept
    anon.add(vecs[0], float("nan"))
    anon.add(np.full(16, np.nan), 0.5)
    assert anon.seen == 500


def test_the_window_survives_a_save_and_a_damaged_one_starts_empty(tmp_path):
    vecs, s, _, _ = topic_stream(400)
    w = PlacementWindow(size=300, k=30, key_share=0.5)
    for i in range(400):
        w.place(vecs[i], s[i], ("a", "b", "")[i % 3])
    path = tmp_path / "m.json"
    RouteMemory(path, "router-a", 0.3, window=w).write(RouteMemory(path, "router-a", 0.3, window=w).dump())
    saved = json.loads(path.read_text())
    assert len(saved["window"]["scores"]) == 300
    back = PlacementWindow(size=300, k=30, key_share=0.5)
    assert RouteMemory(path, "router-a", 0.3, window=back).restore()
    assert back.state()["keys"] == w.state()["keys"]
    for v in vecs[:20]:  # the same placement as before the restart (vectors kept to 4 decimals)
        assert back.shift(v) == pytest.approx(w.shift(v), abs=1e-3)
    small = PlacementWindow(size=50, k=30)  # a smaller window keeps the newest
    assert small.restore(saved["window"]) and len(small) == 50
    np.testing.assert_allclose(small.state()["scores"], w.state()["scores"][-50:])
    for bad in ({"vectors": [[1.0, float("nan")]], "scores": [0.1], "keys": [""]}, {"vectors": "x"}, [],
                {"vectors": [[1.0]], "scores": [0.1, 0.2], "keys": ["", ""]}):
        fresh = PlacementWindow(size=300, k=30)
        assert not fresh.restore(bad) and len(fresh) == 0


def full_window(n: int = 1000, dims: int = 384, seed: int = 5) -> tuple[PlacementWindow, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = PlacementWindow(size=n, k=20, key_share=0.5)
    vecs = unit(rng.normal(size=(n + 50, dims))).astype(np.float32)
    for i in range(n):
        w.add(vecs[i], float(rng.normal()), ("a", "b", "")[i % 3])
    return w, vecs[n:]


def test_a_saved_window_is_one_float16_blob_and_places_as_before_within_its_rounding(tmp_path):
    w, queries = full_window()
    path = tmp_path / "m.json"
    RouteMemory(path, "router-a", 0.3, window=w).write(RouteMemory(path, "router-a", 0.3, window=w).dump())
    saved = json.loads(path.read_text())["window"]
    assert isinstance(saved["vectors"], str) and saved["dims"] == 384  # not 384,000 numbers in JSON lists
    assert path.stat().st_size < 1_100_000  # 768 bytes a request as base64 (4-decimal lists: ~2.9 MB)
    back = PlacementWindow(size=1000, k=20, key_share=0.5)
    assert RouteMemory(path, "router-a", 0.3, window=back).restore()
    before, after = w.state(), back.state()
    assert after["keys"] == before["keys"] and np.array_equal(after["scores"], before["scores"])
    # float16 rounds each number by at most 2^-11 of itself: a unit vector moves by at most 2^-11, so does a cosine
    assert np.abs(after["vectors"] - before["vectors"]).max() <= 2.0 ** -11 * np.abs(before["vectors"]).max()
    assert not np.array_equal(after["vectors"], before["vectors"])  # (rounded: the bound above is not vacuous)
    sims = before["vectors"] @ queries.T
    moved = np.abs(after["vectors"] @ queries.T - sims).max()
    assert moved <= 2.0 ** -11
    # a query whose k-th and (k+1)-th neighbours are further apart than twice that keeps its neighbours: its placed
    # score after the restart is the one before (up to the order of a float sum); only near-ties can differ
    top = np.sort(sims, axis=0)[::-1]
    clear = top[w.k - 1] - top[w.k] > 2 * moved
    assert clear.sum() > len(queries) // 2
    for q in queries[clear]:
        assert back.shift(q) == pytest.approx(w.shift(q), rel=1e-12, abs=1e-12)
    for q in queries:
        assert abs(back.shift(q) - w.shift(q)) <= 2 * (before["scores"].max() - before["scores"].min()) / w.k


def test_a_damaged_or_oversized_saved_blob_starts_an_empty_window():
    w, _ = full_window(60, dims=8)
    good = PlacementWindow.jsonable(w.state())
    blob = good["vectors"]
    nan = np.full((60, 8), np.float16(np.nan)).astype("<f2").tobytes()
    for bad in ({**good, "vectors": blob[:-4]}, {**good, "vectors": "!" + blob[1:]},  # short; not base64
                {**good, "vectors": base64.b64encode(nan).decode()},  # not finite
                {**good, "dims": 16}, {**good, "dims": True}, {**good, "dims": 0},  # not one vector a score
                {**good, "scores": good["scores"][:-1]}, {**good, "keys": good["keys"][:-1]},
                {**good, "dims": 1 << 20},
                {"dims": 4097, "vectors": base64.b64encode(np.ones(4097, "<f2").tobytes()).decode(), "scores": [0.1],
                 "keys": [""]}):  # past MAX_DIMS, even sized to match (a window of 1,000 such: 16 MB, held in memory)
        fresh = PlacementWindow(size=60, k=20)
        assert not fresh.restore(bad) and len(fresh) == 0 and fresh.vectors is None
    assert PlacementWindow(size=60, k=20).restore(good)
    # a saved window larger than the route's: only the newest `size` are decoded and kept
    small = PlacementWindow(size=10, k=5)
    assert small.restore(good) and len(small) == 10 and small.seen == 10
    np.testing.assert_allclose(small.state()["scores"], w.state()["scores"][-10:])
    # a file of before session 34 (vectors as lists of numbers) is still read
    old = {"vectors": np.round(w.state()["vectors"].astype(float), 4).tolist(), "scores": good["scores"],
           "keys": good["keys"]}
    assert PlacementWindow(size=60, k=20).restore(old)


def saved_transfer(tmp_path, with_profile: bool = True) -> str:
    train = two_topics(seed=2)
    r = make_router("transfer-lsa", members=("tfidf-logit-wf",)).fit(train)
    if with_profile:
        attach_profile(r, train.prompts)
    return str(save_router(r, tmp_path / ("t" if with_profile else "bare")))


def test_eval_streams_a_saved_transferred_router_through_the_window(tmp_path):
    d = two_topics(700)
    path = saved_transfer(tmp_path)
    r = load_router(path)
    own = r.score(d)
    got = evaluate(d, [path], baselines=False, placement="window")[0].scores
    vecs = r.profile.lsa.encode(d.prompts)
    np.testing.assert_allclose(got, stream_placed(own, vecs, seed=0))
    assert not np.allclose(got, own)
    # the route's placement does the same, request by request, in the same arrival order
    route = route_placement("window", r, "main")
    assert route is not None
    order = np.random.default_rng(0).permutation(len(d))
    live = np.array([route.place(d.prompts[i], r.score_text(d.prompts[i])) for i in order])
    np.testing.assert_allclose(live, got[order], rtol=1e-5, atol=1e-5)
    # a router saved without a training profile is scored as it is (and a route logs that it cannot place)
    bare = saved_transfer(tmp_path, with_profile=False)
    np.testing.assert_allclose(evaluate(d, [bare], baselines=False, placement="window")[0].scores,
                               load_router(bare).score(d))
    assert route_placement("window", load_router(bare), "main") is None
    assert route_placement("none", r, "main") is None
    assert route_placement("window", make_router("linear").fit(two_topics(50)), "main") is None  # not measured


def test_cross_validated_rows_are_streamed_fold_by_fold_with_each_folds_profile():
    d = two_topics(400)
    raw: dict[str, np.ndarray] = {}
    row = evaluate(d, ["transfer-lsa"], folds=2, baselines=False, unplaced=raw, placement="window")[0]
    np.testing.assert_allclose(row.scores, placed_by_fold(raw[row.name], d, 2, 0, "window"))
    assert not np.allclose(row.scores, raw[row.name])
    with pytest.raises(ValueError, match="training profile"):
        pl.place(raw[row.name], d.prompts, "window")


def test_a_gateway_route_places_its_scores_by_the_requests_before_them(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                        tmp_path):
    from tests.doubles import Reply
    from tests.routers.test_learned_route import decision_of, learned_config
    from tierwise.policies.learned import LearnedConfig
    from tierwise.policies.learned_config import PLACEMENT

    assert PLACEMENT == "window-tokens" and LearnedConfig.model_fields["placement"].default == "window-tokens"
    path = saved_transfer(tmp_path)
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    g = gateway(learned_config(openai_up, anthropic_up, path, placement="window"))
    r, d = load_router(path), two_topics(15)
    steps = []
    for p in d.prompts:
        resp = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": p}])
        steps.append(decision_of(g, resp.headers["x-tierwise-request-id"])[1])
    raw = [s["detail"]["placement"]["raw_score"] for s in steps]
    np.testing.assert_allclose(raw, [r.score_text(p) for p in d.prompts], rtol=1e-6, atol=1e-6)
    assert [s["detail"]["placement"]["window"] for s in steps] == list(range(1, 31))
    np.testing.assert_allclose([s["score"] for s in steps[:20]], raw[:20])  # fewer than K before them
    assert not np.allclose([s["score"] for s in steps[20:]], raw[20:])
    want = route_placement("window", r, "main")
    assert want is not None
    np.testing.assert_allclose([s["score"] for s in steps], [want.place(p, x) for p, x in zip(d.prompts, raw,
                                                                                              strict=True)],
                               rtol=1e-5, atol=1e-5)
    plain = gateway(learned_config(openai_up, anthropic_up, path))  # the default, window-tokens: this router has no
    resp = oai(plain).chat.completions.with_raw_response.create(
        model="main", messages=[{"role": "user", "content": d.prompts[0]}])
    assert "placement" not in decision_of(plain, resp.headers["x-tierwise-request-id"])[1]["detail"]  # token vectors


def test_eval_cli_places_by_the_window_when_asked_and_not_by_default(tmp_path):
    from click.testing import CliRunner

    from tierwise.cli import main

    d = two_topics(700)
    path = saved_transfer(tmp_path)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": p, "strong": s, "weak": w}) + "\n"
                            for i, (p, s, w) in enumerate(zip(d.prompts, d.strong, d.weak, strict=True))))
    got = {}
    for args in (["--placement", "window"], []):
        out = tmp_path / f"scores{len(args)}.jsonl"
        res = CliRunner().invoke(main, ["eval", str(data), "-r", path, "--ci", "0", "--scores", str(out), *args])
        assert res.exit_code == 0, res.output
        rows = [json.loads(x) for x in out.read_text().splitlines()]
        col = next(k for k in rows[0] if "saved" in k)
        got[len(args)] = np.array([r[col] for r in rows])
    r = load_router(path)
    np.testing.assert_allclose(got[2], stream_placed(r.score(d), r.profile.lsa.encode(d.prompts)), rtol=1e-6)
    np.testing.assert_allclose(got[0], r.score(d), rtol=1e-6)  # the default (`none`): as the route scores by default
