"""The training bank (routers/bank.py; issue 22, round 23): a saved `transfer` carries its training questions' token
vectors on 64 principal axes and their gains; `placement_bank` (a route) and `--bank-weight` (`tierwise eval`) add
round 22's KTW term, the same request by request."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.routers.test_learned_route import decision_of, learned_config
from tests.routers.test_placement import two_topics
from tests.routers.test_window_tokens import eval_arrival, saved
from tierwise.evaluation.replay import evaluate
from tierwise.routers import RouterError, load_router
from tierwise.routers.bank import AXES, MAX_ROWS, BankedPlacement, NeighbourBank, training_gains
from tierwise.routers.placement import place
from tierwise.routers.window import K, PlacementWindow, route_placement, stream_placed


def reference(s: np.ndarray, kt: np.ndarray, w: float, seed: int = 0, size: int = 1000) -> np.ndarray:
    """What round 22's KTW adds to T (bench/transfer22_candidates.py `window_scaled`), written out again."""
    n = len(s)
    extra = np.zeros(n)
    wx, ws = np.zeros(size), np.zeros(size)
    held, pos = 0, 0
    for i in np.random.default_rng(seed).permutation(n):
        if held >= K:
            sx = wx[:held].std()
            extra[i] = w * (kt[i] - wx[:held].mean()) / sx * ws[:held].std() if sx > 0 else 0.0
        wx[pos], ws[pos] = kt[i], s[i]
        pos = (pos + 1) % size
        held = min(held + 1, size)
    return extra


def test_a_saved_transfer_carries_its_bank_and_eval_adds_round_22s_term(tmp_path):
    path = saved(tmp_path)
    r = load_router(path)
    assert r.bank is not None and r.bank.vectors.dtype == np.float16 and r.bank.proj.shape == (384, AXES)
    train = two_topics(seed=2)
    assert len(r.bank) == len(train)
    np.testing.assert_allclose(r.bank.gains, training_gains(train), atol=1e-6)
    d = two_topics(150, seed=4)
    tokens = r.vectors.encode(d.prompts)
    kt = np.array([r.bank.lookup(v) for v in tokens])
    law = np.array(d.subjects) == "law"
    assert kt[law].mean() > kt[~law].mean() + 0.1  # law gains 60% of the time in training, mathematics 20%
    raw = r.score(d)
    plain = evaluate(d, [path], baselines=False, placement="window-tokens")[0].scores
    got = evaluate(d, [path], baselines=False, placement="window-tokens", bank_weight=0.25)[0].scores
    np.testing.assert_allclose(plain, stream_placed(raw, tokens))  # off by default: today's placement
    np.testing.assert_allclose(got, plain + reference(raw, kt, 0.25), rtol=1e-9, atol=1e-9)
    assert not np.allclose(got, plain)  # seen failing with `bank_weight` not passed on to `place`
    # a router saved without a bank (`transfer-lsa` has no token vectors either) is placed as before
    bare = saved(tmp_path, "transfer-lsa")
    assert evaluate(d, [bare], baselines=False, placement="window-tokens", bank_weight=0.25)[0].scores is not None


def _rewrite(path: str, **arrays: np.ndarray) -> None:
    npz = path[:-5] + ".npz"
    with np.load(npz, allow_pickle=False) as f:
        held = dict(f)
    held.update({f"bank/{k}": v for k, v in arrays.items()})
    for k, v in arrays.items():
        if v is None:
            del held[f"bank/{k}"]
    np.savez(npz, **held)


@pytest.mark.parametrize("change, says", [
    ({"gains": "nan"}, "not finite"),
    ({"vectors": "f32"}, "float16"),
    ({"proj": "wide"}, "projection of shape"),
    ({"proj": "short"}, "projection of shape"),
    ({"gains": "short"}, "one gain each"),
    ({"gains": None}, "no 'gains' array"),
    ({"gains": "text"}, "not an array of floats"),
    ({"rows": 10}, "do not match"),
])
def test_a_hostile_bank_fails_to_load_with_a_clear_error(tmp_path, change, says):
    path = saved(tmp_path)
    r = load_router(path)
    b = r.bank
    (key, how), = change.items()
    if key == "rows":
        meta = json.loads(open(path).read())
        meta["bank"]["rows"] = how
        open(path, "w").write(json.dumps(meta))
    else:
        new = {"nan": b.gains.copy(), "f32": b.vectors.astype(np.float32), "wide": np.ones((384, AXES + 1), np.float32),
               "short": (b.proj[:100] if key == "proj" else b.gains[:-1]), "text": np.array(["a"] * len(b)),
               None: None}[how]
        if how == "nan":
            new[3] = np.nan
        _rewrite(path, **{key: new})
    with pytest.raises(RouterError, match=says):  # seen failing (loaded, or a bare IndexError) before the checks
        load_router(path)


def _with_meta(path: str, **settings: object) -> None:
    meta = json.loads(open(path).read())
    meta["bank"].update(settings)
    open(path, "w").write(json.dumps(meta))


def test_a_saved_bank_looks_up_with_its_own_k_and_temperature(tmp_path):
    path = saved(tmp_path)
    d = two_topics(20, seed=8)
    v = load_router(path).vectors.encode(d.prompts)
    _with_meta(path, k=120, temperature=2.0)
    b = load_router(path).bank
    assert (b.k, b.temperature) == (120, 2.0) and b.meta()["k"] == 120
    for q in v:
        p = b.proj.T @ q
        sims = b.vectors.astype(np.float32) @ (p / np.linalg.norm(p))
        top = np.argsort(-sims)[:120]
        w = np.exp((sims[top] - sims[top].max()) / 2.0)
        # seen failing (50 rows at 0.05: the saved settings were ignored) before the bank read them
        assert b.lookup(q) == pytest.approx(float(w @ b.gains[top] / w.sum()), abs=1e-5)


@pytest.mark.parametrize("settings, says", [
    ({"k": 0}, "k 0"), ({"k": 10**6}, "k 1000000"), ({"k": "50"}, "k '50'"), ({"k": True}, "k True"),
    ({"k": None}, "k None"), ({"temperature": 0}, "temperature 0"), ({"temperature": float("nan")}, "temperature nan"),
    ({"temperature": 1e9}, "temperature"), ({"temperature": "1"}, "temperature '1'"),
])
def test_a_hostile_look_up_setting_fails_to_load_with_a_clear_error(tmp_path, settings, says):
    path = saved(tmp_path)
    _with_meta(path, **settings)
    with pytest.raises(RouterError, match=says):
        load_router(path)


def test_a_bank_is_bounded():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    b = NeighbourBank.fit(x / np.linalg.norm(x, axis=1, keepdims=True), rng.normal(size=300), max_rows=100)
    assert len(b) == 100 and b.proj.shape == (8, 8)
    meta = b.meta() | {"rows": MAX_ROWS + 1}
    big = np.zeros((MAX_ROWS + 1, 8), np.float16)
    with pytest.raises(ValueError, match="rows"):
        NeighbourBank.restore(meta, {"proj": b.proj, "vectors": big, "gains": np.zeros(MAX_ROWS + 1, np.float32)}, 8)


def test_a_restored_window_recomputes_its_bank_gains(tmp_path):
    r = load_router(saved(tmp_path))
    route = route_placement("window-tokens", r, "main", bank_weight=0.25)
    assert isinstance(route, BankedPlacement)
    d = two_topics(40, seed=6)
    for p in d.prompts:
        route.place(p, 0.5)
    fresh = route_placement("window-tokens", r, "main", bank_weight=0.25)
    assert isinstance(fresh, BankedPlacement)
    assert fresh.window.restore(PlacementWindow.jsonable(route.window.state()))
    np.testing.assert_allclose(fresh.banked.gains[:fresh.window.held], route.banked.gains[:route.window.held],
                               atol=2e-3)  # seen failing (all 0) with the gains kept only by `place`: a restart lost them
    assert route.banked.gains[:route.window.held].std() > 0


def test_placement_bank_needs_window_tokens(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    from tierwise.policies.learned import LearnedConfig

    assert LearnedConfig.model_fields["placement_bank"].default == 0.0
    with pytest.raises(Exception, match="placement_bank needs"):
        gateway(learned_config(openai_up, anthropic_up, saved(tmp_path), placement="window", placement_bank=0.25))


def test_a_gateway_route_adds_the_bank_term_as_eval_replays_it(gateway, openai_up, anthropic_up,  # noqa: F811
                                                               tmp_path):
    path = saved(tmp_path)
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    g = gateway(learned_config(openai_up, anthropic_up, path, placement="window-tokens", placement_bank=0.25))
    d = two_topics(30, seed=5)
    arrival = np.random.default_rng(7).permutation(len(d))
    client = oai(g)
    steps = []
    for i in arrival:
        resp = client.chat.completions.with_raw_response.create(
            model="main", messages=[{"role": "user", "content": d.prompts[i]}])
        steps.append(decision_of(g, resp.headers["x-tierwise-request-id"])[1])
    raw = np.array([s["detail"]["placement"]["raw_score"] for s in steps])
    live = np.array([s["score"] for s in steps])
    order, at = eval_arrival(len(d))
    prompts = [d.prompts[arrival[j]] for j in at]
    r = load_router(path)
    replay = place(raw[at], prompts, "window-tokens", r.vectors.encode, 0, bank=r.bank, bank_weight=0.25)
    np.testing.assert_allclose(live, replay[order], rtol=1e-5, atol=1e-5)  # seen failing with the route's term off
    assert not np.allclose(live, place(raw[at], prompts, "window-tokens", r.vectors.encode, 0)[order])
