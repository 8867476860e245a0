"""`request_model: {kind: text}`: a text model of local acceptance trained only on the verdicts the loop bought,
blended into each request's acceptance estimate. Scripted streams through `LearningLoop` (the code the
`reflective` route and the replay both run)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tierwise.learning import request_model as rm_mod
from tierwise.learning.loop import LearningLoop, LoopSettings

# two kinds of prompt inside one task type, of the same length (the length signal cannot tell them apart)
EASY = "Translate the word '{w}' into French and give one example sentence using it, please."
HARD = "Prove the inequality {w} holds for every prime and explain each step of the proof."
WORDS = ["cat", "dog", "tree", "house", "river", "bread", "cloud", "stone", "light", "chair", "music", "field"]


def make_loop(kind: str = "text", **model) -> LearningLoop:
    return LearningLoop("r", LoopSettings.model_validate({
        # every request judged (no stop to the shadow runs of an unlikely type): the test gives every verdict
        "schedule": {"first_uses": 1000, "shadow_stop_after": 10_000},
        "boundary": {"quality_target": 0.75, "credible": 0.6, "discount": 1.0},
        "request_model": {"kind": kind, "min_rows": 20, "refit_every": 5, "alpha": 0.3, **model}}))


def feed(loop: LearningLoop, task_type: str, n_easy: int, n_hard: int, tag: str = "") -> None:
    """Interleaved requests: easy ones accepted, hard ones rejected; a verdict for every judged request."""
    kinds = ["easy"] * n_easy + ["hard"] * n_hard
    order = sorted(range(len(kinds)), key=lambda i: (i * 7919) % len(kinds))
    for j, i in enumerate(order):
        easy = kinds[i] == "easy"
        text = (EASY if easy else HARD).format(w=WORDS[j % len(WORDS)])
        rid = f"{tag}{task_type}-{j}"
        plan = loop.plan(task_type, rid, text=text)
        assert plan.judge
        loop.verdict(task_type, 1.0 if easy else 0.0, request_id=rid)


def tiers(loop: LearningLoop, task_type: str) -> tuple[str, str]:
    easy = loop.plan(task_type, "probe-easy", text=EASY.format(w="window"))
    hard = loop.plan(task_type, "probe-hard", text=HARD.format(w="x^2 + 1 > 2x"))
    return easy.tier, hard.tier


def test_the_text_model_sends_a_frontier_types_easy_requests_local_and_a_local_types_hard_ones_back() -> None:
    for kind, expect_mixed, expect_good in (("text", ("local", "frontier"), ("local", "frontier")),
                                            ("none", ("frontier", "frontier"), ("local", "local"))):
        loop = make_loop(kind)
        feed(loop, "mixed", 28, 12)  # acceptance 0.70: the type stays on the frontier
        feed(loop, "good", 36, 4)  # 0.90: the type moves local
        assert loop.boundary.tier("mixed") == "frontier" and loop.boundary.tier("good") == "local"
        assert tiers(loop, "mixed") == expect_mixed, kind
        assert tiers(loop, "good") == expect_good, kind


def test_the_blend_is_the_stated_weighted_mean_and_the_fit_is_the_ridge_solution() -> None:
    loop = make_loop(n_buckets=1024)
    feed(loop, "mixed", 28, 12)
    m = loop.request_model
    assert m is not None and m.ready and len(m.rows) == 40 and m.fits == 5  # at 20 rows, then every 5 rows
    # the ridge problem in its primal form, on dense matrices: (XᵀX + αI) w = Xᵀ(y − ȳ), X the TF-IDF rows
    rows = list(m.rows)
    n, b = len(rows), 1024
    df = np.zeros(b)
    for idx, _, _ in rows:
        df[idx] += 1
    idf = np.log((1 + n) / (1 + df)) + 1
    x = np.zeros((n, b))
    for r, (idx, cnt, _) in enumerate(rows):
        v = (1 + np.log(cnt)) * idf[idx]
        x[r, idx] = v / np.linalg.norm(v)
    y = np.array([r[2] for r in rows])
    w = np.linalg.solve(x.T @ x + 0.3 * np.eye(b), x.T @ (y - y.mean()))
    text = EASY.format(w="window")
    f = m.features(text)
    v = np.zeros(b)
    v[f[0]] = (1 + np.log(f[1])) * idf[f[0]]
    expect = y.mean() + float(v @ w) / np.linalg.norm(v)
    assert m.estimate(f) == pytest.approx(min(1.0, max(0.0, expect)), abs=1e-5)
    # the request's acceptance: (1 − weight) × the type's posterior mean + weight × the model's
    st = loop.boundary.state("mixed")
    blended = 0.5 * st.mean() + 0.5 * m.estimate(f)
    assert (loop.plan("mixed", "p", text=text).tier == "local") == (blended >= 0.75)


def test_only_the_loops_own_verdicts_train_it() -> None:
    loop = LearningLoop("r", LoopSettings.model_validate({
        "schedule": {"first_uses": 2, "sample_rate": 0.1},
        "boundary": {"quality_target": 0.75},
        "request_model": {"kind": "text", "min_rows": 2}}))
    m = loop.request_model
    plans = {f"q{i}": loop.plan("qa", f"q{i}", text=EASY.format(w=WORDS[i % 12])) for i in range(40)}
    judged = [rid for rid, p in plans.items() if p.judge]
    skipped = [rid for rid, p in plans.items() if not p.judge]
    assert judged[:2] == ["q0", "q1"] and skipped  # the first uses, then a 10% sample
    assert set(m.pending) == set(judged)
    # a verdict on a request the loop did not decide to judge (e.g. recorded elsewhere) trains nothing
    for rid in skipped:
        loop.verdict("qa", 1.0, request_id=rid)
    loop.verdict("qa", 1.0, request_id="unknown")
    loop.verdict("qa", 1.0)
    assert len(m.rows) == 0
    # a feedback-prompted verdict (a biased sample) neither
    loop.verdict("qa", 0.0, request_id=judged[0], feedback=True)
    assert len(m.rows) == 0 and judged[0] in m.pending
    for k, rid in enumerate(judged):
        loop.verdict("qa", float(k % 2), request_id=rid)
    assert [r[2] for r in m.rows] == [float(k % 2) for k in range(len(judged))]
    assert not m.pending and m.ready
    loop.verdict("qa", 1.0, request_id=judged[0])  # a second verdict on the same request: no second row
    assert len(m.rows) == len(judged)


def test_off_by_default_and_without_text_nothing_is_kept() -> None:
    loop = LearningLoop("r", LoopSettings())
    assert loop.request_model is None and loop.dump()["request_model"] is None
    on = make_loop()
    on.plan("qa", "a")  # no text given
    assert not on.request_model.pending


def test_bounds_on_training_rows_and_pending_features(monkeypatch) -> None:
    loop = make_loop(max_rows=30)
    feed(loop, "mixed", 28, 12)
    m = loop.request_model
    assert len(m.rows) == 30  # the latest 30 verdicts
    monkeypatch.setattr(rm_mod, "PENDING", 16)
    for i in range(40):
        loop.plan("mixed", f"wait-{i}", text=EASY.format(w=WORDS[i % 12]))
    assert list(m.pending) == [f"wait-{i}" for i in range(24, 40)]  # the oldest dropped
    long = " ".join(f"w{i}" for i in range(100_000))  # ~690,000 characters of distinct words
    idx, _ = m.features(long)
    assert np.array_equal(idx, m.features(long[: m.settings.max_chars])[0]) and len(idx) < 2 * m.settings.max_chars


def test_save_and_restore_keep_the_model_and_the_decisions(tmp_path) -> None:
    a = make_loop()
    feed(a, "mixed", 28, 13)  # 41 rows: the last fit at 40, one row since
    path = tmp_path / "state.json"
    a.save(path)
    saved = json.loads(path.read_text())
    assert len(saved["request_model"]["rows"]) == 41 and saved["request_model"]["since_fit"] == 1
    assert "Translate" not in path.read_text()  # hashed bucket counts, no prompt text
    b = make_loop()
    assert b.restore(path)
    ma, mb = a.request_model, b.request_model
    probes = [EASY.format(w="window"), HARD.format(w="n > 3"), "Something else entirely, about ships."]
    assert [mb.estimate(mb.features(t)) for t in probes] == pytest.approx([ma.estimate(ma.features(t)) for t in probes])
    # the same stream continues identically in the restarted loop
    feed(a, "mixed", 6, 4, tag="more-")
    feed(b, "mixed", 6, 4, tag="more-")
    # a: fits at 20, 25, ..., 50 rows; b: one on restore (without the row since a's last fit), then at 45 and 50
    assert (ma.fits, mb.fits) == (7, 3)
    assert [mb.estimate(mb.features(t)) for t in probes] == pytest.approx([ma.estimate(ma.features(t)) for t in probes])
    assert tiers(a, "mixed") == tiers(b, "mixed")


def test_a_malformed_or_mismatched_saved_model_is_skipped(tmp_path) -> None:
    a = make_loop()
    feed(a, "mixed", 28, 12)
    data = a.dump()
    rows = data["request_model"]["rows"]
    rows[0][0] = "not base64!"
    rows[1][2] = 7.0
    rows[2] = "junk"
    b = make_loop()
    b.load(data)
    assert len(b.request_model.rows) == 37 and b.request_model.ready
    c = make_loop(n_buckets=1024)
    c.load(a.dump())
    assert not c.request_model.rows and not c.request_model.ready


def test_a_type_moved_back_to_the_frontier_is_left_to_its_own_evidence() -> None:
    loop = make_loop()
    feed(loop, "other", 40, 0)  # the model learns that the easy prompts are accepted
    for j in range(10):  # "t" earns the local tier on easy prompts ...
        rid = f"t-{j}"
        loop.plan("t", rid, text=EASY.format(w=WORDS[j % 12]))
        loop.verdict("t", 1.0, request_id=rid)
    assert loop.boundary.tier("t") == "local"
    for j in range(10, 20):  # ... then its answers turn bad (on hard prompts, so the model keeps liking easy ones)
        rid = f"t-{j}"
        loop.plan("t", rid, text=HARD.format(w=f"n > {j}"))
        loop.verdict("t", 0.0, request_id=rid)
        if loop.boundary.tier("t") == "frontier":
            break
    st = loop.boundary.state("t")
    assert st.tier == "frontier" and st.mean() < 0.75
    m = loop.request_model
    easy = EASY.format(w="window")
    q = m.estimate(m.features(easy))
    assert 0.5 * st.mean() + 0.5 * q >= 0.75  # the blend alone would serve it locally
    assert loop.plan("t", "probe", text=easy).tier == "frontier"
    # a type with the same evidence that never moved gets the model's estimate
    for j in range(12):
        rid = f"u-{j}"
        hard = j % 3 == 2
        loop.plan("u", rid, text=HARD.format(w=f"m > {j}") if hard else EASY.format(w=WORDS[j % 12]))
        loop.verdict("u", 0.0 if hard else 1.0, request_id=rid)
    su = loop.boundary.state("u")
    assert su.tier == "frontier" and su.total_judged == su.judged == 12 and su.mean() < 0.75  # never moved
    assert loop.plan("u", "probe-u", text=easy).tier == "local"


def _combine_loop(combine: str, weight: float, q: float, z: float, monkeypatch) -> LearningLoop:
    """A loop whose type "t" has a within slope of −1 (from 10 verdicts) and whose text model says q for every
    prompt; the request's standardised signal is z."""
    from collections import deque

    from tierwise.learning.within import TypeSignal
    loop = LearningLoop("r", LoopSettings.model_validate({
        "boundary": {"quality_target": 0.75},
        "within": {"enabled": True},
        "request_model": {"kind": "text", "weight": weight, "combine": combine, "n_buckets": 1024}}))
    loop.within.types["t"] = TypeSignal(records=deque([(0.0, 1.0)] * 10, maxlen=500), beta=-1.0)
    monkeypatch.setattr(loop.within, "standardise", lambda task_type, x: z)
    m = loop.request_model
    m.coef, m.idf = np.zeros(1024), np.ones(1024)  # fitted
    monkeypatch.setattr(m, "estimate", lambda f: q)
    return loop


@pytest.mark.parametrize(("combine", "weight", "q", "z", "tier"), [
    # weight 1.0, q = 0.80, slope −1: within → sigmoid(logit 0.8 − z), the edge at z = logit 0.8 − logit 0.75 = 0.2877
    ("within", 1.0, 0.80, 1.0, "frontier"),   # sigmoid(1.3863 − 1) = 0.5954
    ("within", 1.0, 0.80, 0.30, "frontier"),  # sigmoid(1.0863) = 0.7477
    ("within", 1.0, 0.80, 0.25, "local"),     # sigmoid(1.1363) = 0.7570
    ("within", 1.0, 0.80, -1.0, "local"),     # sigmoid(2.3863) = 0.9158
    ("blend", 1.0, 0.80, 1.0, "local"),       # the text model alone: 0.80, whatever the signal
    ("blend", 1.0, 0.70, -1.0, "frontier"),   # 0.70
    ("within", 1.0, 0.70, -1.0, "local"),     # sigmoid(0.8473 + 1) = 0.8638
    # weight 0.5, the type's mean 0.5 (no verdicts), q = 0.9: within → sigmoid(logit 0.7 − z)
    ("within", 0.5, 0.90, -0.30, "local"),    # sigmoid(0.8473 + 0.3) = 0.7590
    ("blend", 0.5, 0.90, -0.30, "frontier"),  # 0.5 × sigmoid(0.3) + 0.45 = 0.5 × 0.5744 + 0.45 = 0.7372
    ("within", 0.5, 0.90, -0.20, "frontier"),  # sigmoid(1.0473) = 0.7403
])
def test_combine_within_lets_the_types_slope_move_the_text_models_estimate(combine, weight, q, z, tier,
                                                                          monkeypatch) -> None:
    loop = _combine_loop(combine, weight, q, z, monkeypatch)
    assert loop.within.slope("t") == -1.0 and loop.boundary.state("t").mean() == 0.5
    assert loop.plan("t", "r1", signal=1.0, text=EASY.format(w="cat")).tier == tier


def test_combine_defaults_to_blend() -> None:
    assert LoopSettings.model_validate({"request_model": {"kind": "text"}}).request_model.combine == "blend"


@pytest.mark.parametrize(("settings", "message"), [
    ({"kind": "text", "combine": "mix"}, "routes.r.request_model.combine: Input should be 'blend' or 'within'"),
    ({"kind": "txt"}, "routes.r.request_model.kind: Input should be 'none' or 'text'"),
    ({"kind": "text", "n_buckets": 3000}, "routes.r.request_model.n_buckets: n_buckets must be a power of two"),
    ({"kind": "text", "max_rows": 10**9}, "routes.r.request_model.max_rows: Input should be less than or equal to 5000"),
    ({"kind": "text", "wieght": 1}, "routes.r.request_model.wieght: unknown key (did you mean `weight`?)"),
])
def test_a_bad_request_model_setting_is_a_clear_config_error(settings, message) -> None:
    import yaml

    from tierwise.config import parse_config
    from tierwise.errors import ConfigError

    cfg = {"providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "locality": "local"}},
           "models": {"qwen": {"provider": "p", "model": "q"}},
           "routes": {"r": {"policy": "reflective", "local": "qwen", "frontier": "qwen", "request_model": settings}}}
    with pytest.raises(ConfigError) as e:
        parse_config(yaml.safe_dump(cfg))
    assert message in e.value.message, e.value.message
