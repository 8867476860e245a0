"""A reflective route's faster per-request decision (session 22, reflect-speed) takes exactly the decisions of the
code it replaced (tests/learning/reference_request_path.py: main at 20c85ba) and learns exactly the same state: one
scripted stream of requests, verdicts, free verdicts and negative feedback (12 task types near and far from the
target, three gateway keys, a drift, prompts in several scripts, empty ones) goes through both, under the route's
defaults and under settings that reach the other branches (a `bound: model` width, parent pools with an estimated
strength, `combine: within`, the fixed schedule). Every plan, every text-model estimate (bit for bit) and the
saved state (as JSON) are compared. The C bucket counts are compared with numpy's `unique` on any text."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import IN_CI, unavailable
from tests.learning.reference_request_path import ReferenceLoop, ReferenceTextAcceptance
from tests.learning.reference_request_path import worth_sampling as reference_worth_sampling
from tierwise.learning.loop import LearningLoop, LoopSettings
from tierwise.learning.request_model import TextAcceptance
from tierwise.learning.request_model_settings import RequestModelSettings
from tierwise.learning.schedule import unit_hash
from tierwise.learning.value import worth_sampling
from tierwise.policies.reflective import ReflectiveConfig
from tierwise.routers import features
from tierwise.routers.features import bucket_counts, python_bucket_counts, token_hashes

TYPES = {  # task type -> local acceptance (the target is 0.75)
    "mmlu/law": 0.55, "mmlu/health": 0.8, "mmlu/math": 0.9, "mmlu/history": 0.97, "gsm8k": 0.7, "gsm8k/hard": 0.4,
    "mt-bench/coding": 0.78, "mt-bench/writing": 0.93, "summarise": 0.85, "translate": 0.74, "chat": 0.99,
    "extract": 0.6}
WORDS = {t: [f"{t.split('/')[-1]}{k}" for k in range(12)] for t in TYPES}
SHARED = ("the of and what which why how is are a an in on for to with by from that this explain compute list "
          "Ünïcödé straße 中文 данные ✓ x² ٣ naïve café — ...").split()
HARD = ("prove", "derive", "optimise", "contradiction")  # words that lower the local answer's acceptance


def prompt(i: int, task_type: str) -> str:
    rng = np.random.default_rng(i)
    if i % 97 == 0:
        return ""  # no text: no text-model features
    n = int(rng.integers(3, 120 if i % 11 else 900))
    own, shared = WORDS[task_type], SHARED
    words = [own[int(rng.integers(len(own)))] if rng.random() < 0.4 else shared[int(rng.integers(len(shared)))]
             for _ in range(n)]
    if rng.random() < 0.3:
        words.insert(int(rng.integers(len(words) + 1)), HARD[int(rng.integers(len(HARD)))])
    return " ".join(words) + ("?" if i % 3 else "\n\tA. 12 B. 13")


def accepted(i: int, task_type: str, text: str) -> float:
    p = TYPES[task_type]
    if task_type == "mmlu/health" and i >= 2200:
        p = 0.3  # a drift of a type that has moved local
    if any(w in text for w in HARD):
        p -= 0.35
    return 1.0 if unit_hash(f"v{i}", "verdict") < p else 0.0


def route_settings(**keys) -> LoopSettings:
    costs = {"saving_usd": 0.01, "judge_usd": 0.0008, "shadow_usd": 0.0015}
    cfg = ReflectiveConfig.model_validate({"local": "l", "frontier": "f", "quality_target": 0.75, **keys,
                                           "value": {**keys.get("value", {}), **costs}})
    bset = cfg.boundary.model_copy(update={"quality_target": cfg.quality_target})
    return LoopSettings(sampling=cfg.sampling, schedule=cfg.schedule, boundary=bset, value=cfg.value,
                        within=cfg.within, request_model=cfg.request_model, order=cfg.order)


VARIANTS = {
    "route defaults": {},
    "bound model, parent pools, estimated strength": {
        "request_model": {"kind": "text", "weight": 1.0, "bound": "model", "refit_every": 20},
        "value": {"explore": "serve", "pool": "parent", "pool_strength": "estimated"}},
    "combine within, bound count, margin audits": {
        "request_model": {"kind": "text", "weight": 0.5, "combine": "within", "bound": "count", "min_rows": 40},
        "value": {"explore": "serve", "audit": "margin", "per_request": True}},
    "fixed schedule, no text model": {
        "sampling": "rules", "value": {"explore": "shadow"}, "within": {"enabled": False},
        "request_model": {"kind": "none"}, "boundary": {"move_back": "mean"}},
}
REQUESTS = 3200


def state(loop: LearningLoop) -> str:
    return json.dumps(loop.dump(), sort_keys=True)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_faster_decision_is_the_reference_one_request_by_request(variant):
    s = route_settings(**VARIANTS[variant])
    new, ref = LearningLoop("r", s), ReferenceLoop("r", s)
    now = [1.8e9]
    new.keys.clock = ref.keys.clock = lambda: now[0]  # when a key was last seen: the same in both
    types = list(TYPES)
    estimates = judged = 0
    for i in range(REQUESTS):
        now[0] = 1.8e9 + i
        t = types[int(unit_hash(f"t{i}", "type") * len(types))]
        text = prompt(i, t)
        key = ("", "k1", "k2")[i % 3] if i % 5 else "k3"
        kw = {"signal": math.log1p(len(text)), "text": text, "key": key, "negative_feedback": i % 151 == 0}
        a, b = new.plan(t, f"q{i}", **kw), ref.plan(t, f"q{i}", **kw)
        assert a == b, (i, t, a, b)
        if new.request_model is not None and text:
            fa, fb = new.request_model.features(text, t), ref.request_model.features(text, t)
            assert all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(fa[:2], fb[:2], strict=True))
            ea, eb = new.request_model.estimate(fa), ref.request_model.estimate(fb)
            assert ea == eb, (i, ea, eb)  # bit for bit
            if s.request_model.bound == "model":
                assert new.request_model.sd(fa) == ref.request_model.sd(fb), i
            estimates += ea is not None
        if a.judge:
            judged += 1
            v = accepted(i, t, text)
            at = 1.8e9 + i  # the moves' times: the same in both
            assert new.verdict(t, v, request_id=f"q{i}", at=at) == ref.verdict(t, v, request_id=f"q{i}", at=at)
        elif i % 13 == 0:  # a verifier's verdict on a served answer, free
            v = accepted(i, t, text)
            at = 1.8e9 + i
            assert new.free_verdict(t, v, request_id=f"q{i}", key=key, at=at) == \
                ref.free_verdict(t, v, request_id=f"q{i}", key=key, at=at)
        if i % 400 == 399:
            assert state(new) == state(ref), i
    assert state(new) == state(ref)
    assert judged > 100
    if s.request_model.kind == "text":
        assert new.request_model.fits > 3 and estimates > 1000  # the text model decided most requests
    # the saved state restores into the same decisions
    again = LearningLoop("r", s)
    again.load(json.loads(state(new)))
    again.keys.clock = ref.keys.clock
    for i in range(REQUESTS, REQUESTS + 300):
        t = types[i % len(types)]
        kw = {"signal": math.log1p(len(prompt(i, t))), "text": prompt(i, t)}
        assert again.plan(t, f"q{i}", **kw) == ref.plan(t, f"q{i}", **kw), i


def test_a_decision_reads_each_pooled_forecast_once(monkeypatch):
    loop = LearningLoop("r", route_settings())
    calls: list[str] = []
    pooled = loop._pooled_forecast
    monkeypatch.setattr(loop, "_pooled_forecast", lambda t: calls.append(t) or pooled(t))
    for i in range(600):
        t = list(TYPES)[i % len(TYPES)]
        calls.clear()
        p = loop.plan(t, f"q{i}", signal=math.log1p(40.0), text=prompt(i, t))
        assert calls in ([], [t]), calls
        if p.judge:
            loop.verdict(t, accepted(i, t, prompt(i, t)), request_id=f"q{i}")
    assert loop._forecasts is None  # outside a decision the forecast is computed afresh
    assert loop._forecast("gsm8k") == ReferenceLoop._forecast(loop, "gsm8k")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(0.01, 500.0), st.floats(0.01, 500.0), st.floats(0.05, 0.95), st.floats(0.0, 1e4),
       st.floats(0.0, 0.5), st.sampled_from(["local", "frontier"]), st.one_of(st.none(), st.floats(0.0, 600.0)),
       st.floats(0.0, 3.0))
def test_the_value_of_verdicts_is_the_reference_one(a, b, target, stake, cost, tier, n_own, z):
    kw = {"tier": tier, "n_own": n_own, "z_move": z}
    assert worth_sampling(a, b, target, stake, cost, **kw) == reference_worth_sampling(a, b, target, stake, cost, **kw)


def test_the_native_bucket_counts_were_built_under_ci():
    if features.native_bucket_counts is None:
        if IN_CI or os.environ.get("CI") == "true":
            pytest.fail("tierwise.routers._tokenhash.bucket_counts did not build or load (setup.py ext_modules); "
                        "CI=true: numpy's unique may not stand in silently")
        unavailable("the C token hashes were not built (no compiler at install?)")


def same_counts(h: np.ndarray, n_buckets: int) -> None:
    want = python_bucket_counts(h, n_buckets)
    got = bucket_counts(h, n_buckets)
    for x, y in zip(got, want, strict=True):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
        assert x.flags.writeable


HOSTILE = st.text(st.sampled_from(list("aZ9 .,-\n\t\u3000\u2003") + list("éßİıſK€中😀\u0301\x00²٣\ufeff\U0010ffff")),
                  max_size=300) | st.characters(blacklist_categories=("Cs",)).map(lambda c: c * 5000) | st.text()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HOSTILE, st.sampled_from([1 << 10, 1 << 16, 1 << 20]))
def test_bucket_counts_of_any_prompt_are_numpys(text, n_buckets):
    token_hashes.cache_clear()
    try:
        h = token_hashes(text)
    except UnicodeEncodeError:  # a lone surrogate: the hashes fail as they always have, before any count
        return
    same_counts(h, n_buckets)
    rm = RequestModelSettings(kind="text", n_buckets=n_buckets, max_chars=100)
    got, want = TextAcceptance(rm).features(text), ReferenceTextAcceptance(rm).features(text)
    assert all(x.tobytes() == y.tobytes() and x.dtype == y.dtype for x, y in zip(got, want, strict=True))


def test_bucket_counts_of_huge_empty_and_crafted_hashes_are_numpys():
    token_hashes.cache_clear()
    same_counts(token_hashes("Ünïcödé x² + ٣ — straße ✓ 中文, \u2003 tab\there; " * 20000), 1 << 16)  # ~900k chars
    same_counts(np.zeros(0, dtype=np.int64), 1 << 16)
    rng = np.random.default_rng(5)
    same_counts(np.full(300_000, 7, dtype=np.int64), 1 << 10)  # one bucket, a long run
    same_counts(rng.integers(-(1 << 62), 1 << 62, 100_000), 1 << 20)  # negative values: two's complement & mask
    same_counts(rng.integers(0, 1 << 32, 5_000)[::2], 1 << 16)  # not contiguous
    same_counts(rng.integers(0, 1 << 32, 50).astype(np.int32), 1 << 16)  # not int64: numpy's path
    if features.native_bucket_counts is not None:
        with pytest.raises(TypeError):
            features.native_bucket_counts(b"12345678", 1023)  # bytes, not int64
        with pytest.raises(ValueError):
            features.native_bucket_counts(np.zeros(3, dtype=np.int64), 1 << 40)


def test_a_prompt_is_hashed_only_when_the_decision_uses_it(monkeypatch):
    loop = LearningLoop("r", route_settings())
    rm = loop.request_model
    assert rm is not None
    read: list[str] = []
    features = rm.features
    monkeypatch.setattr(rm, "features", lambda text, t="": read.append(t) or features(text, t))
    for i in range(400):
        t = list(TYPES)[i % len(TYPES)]
        read.clear()
        p = loop.plan(t, f"q{i}", signal=math.log1p(40.0), text=prompt(i, t) or "x")
        st = loop.boundary.state(t)
        moved_back = st.tier == "frontier" and st.total_judged > st.judged
        used = (rm.ready and not moved_back) or (p.judge and p.reason != "negative-feedback")
        assert read == ([t] if used else []), (i, p, rm.ready)  # once when used, never otherwise
        if p.judge:
            loop.verdict(t, accepted(i, t, prompt(i, t)), request_id=f"q{i}")
    assert rm.ready  # the model got fitted on the way: both phases were seen
