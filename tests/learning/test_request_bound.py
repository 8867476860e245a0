"""`request_model.bound`: a request of a frontier type goes local only when the lower credible bound of its own
acceptance clears the target (`count`: a Beta centred on its estimate with the type's evidence; `model`: the
text model's own credible interval: its posterior sd as a Bayesian ridge regression). Hand-computed cases through `LearningLoop`
(the code the `reflective` route and the replay both run), with a text model stubbed to say q for every prompt.

The Beta bounds are checked by hand with the binomial identity for integer a, b: P(X <= x) = P(Bin(a + b - 1, x) >= a).
At credible 0.6 the lower bound is the 20% quantile, so a request goes local iff P(X <= 0.75) <= 0.2.
"""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.learning.boundary import TaskState
from tierwise.learning.loop import LearningLoop, LoopSettings
from tierwise.learning.request_model import solve as rm_solve

TEXT = "What is the capital of France?"


def stub_loop(bound: str, q: float, monkeypatch, weight: float = 1.0, **model) -> LearningLoop:
    loop = LearningLoop("r", LoopSettings.model_validate({
        "schedule": {"first_uses": 1000, "shadow_stop_after": 10_000},
        "boundary": {"quality_target": 0.75, "credible": 0.6, "discount": 1.0},
        "request_model": {"kind": "text", "weight": weight, "bound": bound, "n_buckets": 1024, **model}}))
    m = loop.request_model
    m.coef, m.idf = np.zeros(1024), np.ones(1024)  # fitted
    monkeypatch.setattr(m, "estimate", lambda f: q)
    return loop


def with_state(loop: LearningLoop, tier: str, good: int, bad: int) -> None:
    loop.boundary.states["t"] = TaskState(tier=tier, a=1.0 + good, b=1.0 + bad, total_judged=good + bad,
                                          judged=good + bad)


@pytest.mark.parametrize(("bound", "tier", "good", "bad", "q", "expect"), [
    # a frontier type with 40 verdicts (30 accepted: mean 31/42 = 0.738, its own bound under the target)
    ("none", "frontier", 30, 10, 0.80, "local"),     # the point estimate 0.80 >= 0.75
    ("count", "frontier", 30, 10, 0.80, "frontier"),  # Beta(1 + 32, 1 + 8): P(Bin(41, .75) >= 33) = 0.270 > 0.2
    ("count", "frontier", 30, 10, 0.85, "local"),     # Beta(1 + 34, 1 + 6): P(Bin(41, .75) >= 35) = 0.083 <= 0.2
    ("count", "frontier", 30, 10, 0.74, "frontier"),  # under the target whatever the width
    # no evidence of its own: Beta(1 + 0, 1 + 0) = uniform, P(X <= 0.75) = 0.75 > 0.2 however sure the text model is
    ("none", "frontier", 0, 0, 0.99, "local"),
    ("count", "frontier", 0, 0, 0.99, "frontier"),
    # a local type: its requests go to the frontier when the estimate falls below the target (the move-back rule)
    ("count", "local", 30, 10, 0.76, "local"),        # its bound (0.69) is under the target: the hysteresis keeps it
    ("count", "local", 30, 10, 0.74, "frontier"),
])
def test_count_bound_applies_the_boundarys_rule_to_the_request(bound, tier, good, bad, q, expect,
                                                              monkeypatch) -> None:
    loop = stub_loop(bound, q, monkeypatch)
    with_state(loop, tier, good, bad)
    assert loop.plan("t", "probe", text=TEXT).tier == expect


@pytest.mark.parametrize(("tier", "weight", "q", "sd", "expect"), [
    # z = 0.8416 (credible 0.6: the 20% quantile); the type has 30 of 40 accepted (mean 31/42 = 0.7381)
    ("frontier", 1.0, 0.80, 0.05, "local"),     # 0.80 − 0.8416 × 0.05 = 0.7579
    ("frontier", 1.0, 0.80, 0.07, "frontier"),  # 0.80 − 0.8416 × 0.07 = 0.7411
    ("frontier", 1.0, 0.90, 0.20, "frontier"),  # 0.90 − 0.1683 = 0.7317
    # weight 0.5: 0.5 × 0.7381 + 0.5 × 0.90 = 0.8190, the model's part of the width 0.5 × 0.10: 0.8190 − 0.0421 = 0.7770
    ("frontier", 0.5, 0.90, 0.10, "local"),
    ("frontier", 0.5, 0.90, 0.20, "frontier"),  # 0.8190 − 0.0842 = 0.7349
    ("local", 1.0, 0.76, 0.20, "local"),        # a local type's request: the point estimate (the move-back rule)
    ("local", 1.0, 0.74, 0.00, "frontier"),
])
def test_model_bound_uses_the_text_models_own_credible_interval(tier, weight, q, sd, expect, monkeypatch) -> None:
    loop = stub_loop("model", q, monkeypatch, weight=weight)
    monkeypatch.setattr(loop.request_model, "sd", lambda f: sd)
    with_state(loop, tier, 30, 10)
    assert loop.plan("t", "probe", text=TEXT).tier == expect


def test_the_models_width_is_the_bayesian_ridge_posterior_with_leave_one_out_noise() -> None:
    """The dual-form width against the primal formulas, computed here independently: sigma^2 the mean square of
    the leave-one-out residuals (y_i − ŷ_i) / (1 − H_ii), H = X (XᵀX + alpha I)⁻¹ Xᵀ, and the variance of the
    estimate at x, sigma^2 xᵀ (XᵀX + alpha I)⁻¹ x."""
    from tierwise.learning.request_model import TextAcceptance
    from tierwise.learning.request_model_settings import RequestModelSettings

    st = RequestModelSettings(kind="text", bound="model", n_buckets=1024, alpha=0.7, min_rows=2)
    m = TextAcceptance(st)
    texts = ["red apple pie", "green apple tart", "red car engine", "blue car door", "apple car", "green door"]
    ys = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    for i, (t, y) in enumerate(zip(texts, ys, strict=True)):
        m.remember(f"r{i}", m.features(t))
        m.record(f"r{i}", y)
    m.fit()
    b, n = 1024, len(texts)
    x = np.zeros((n, b))
    for i, (idx, cnt, _) in enumerate(m.rows):
        v = (1.0 + np.log(cnt.astype(np.float64))) * m.idf[idx].astype(np.float64)
        x[i, idx] = v / np.linalg.norm(v)
    y = np.array(ys) - np.mean(ys)
    a = np.linalg.inv(x.T @ x + 0.7 * np.eye(b))
    h = x @ a @ x.T
    loo = (y - h @ y) / (1.0 - np.diag(h))
    sigma2 = float(np.mean(loo ** 2))
    assert m.width is not None and m.width[2] == pytest.approx(sigma2, rel=1e-4)
    for probe in ("red apple", "blue car", "a question about something else entirely"):
        f = m.features(probe)
        idx, cnt = f
        v = np.zeros(b)
        w = (1.0 + np.log(cnt.astype(np.float64))) * m.idf[idx].astype(np.float64)
        v[idx] = w / np.linalg.norm(w)
        assert m.sd(f) == pytest.approx(float(np.sqrt(sigma2 * v @ a @ v)), rel=1e-4), probe
    # unlike every judged prompt: the prior's width, sigma / sqrt(alpha); like judged prompts: narrower
    assert m.sd(m.features("zzz qqq")) == pytest.approx(float(np.sqrt(sigma2 / 0.7)), rel=1e-3)
    assert m.sd(m.features("red apple pie")) < m.sd(m.features("zzz qqq"))
    # without `bound: model` no width is kept
    plain = TextAcceptance(RequestModelSettings(kind="text", n_buckets=1024, min_rows=2))
    plain.install(rm_solve(list(m.rows), plain.settings))
    assert plain.width is None and plain.sd(m.features("red apple")) is None


def test_bound_defaults_to_none_and_a_bad_value_is_a_clear_config_error() -> None:
    import yaml

    from tierwise.config import parse_config
    from tierwise.errors import ConfigError

    assert LoopSettings.model_validate({"request_model": {"kind": "text"}}).request_model.bound == "none"
    cfg = {"providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "locality": "local"}},
           "models": {"qwen": {"provider": "p", "model": "q"}},
           "routes": {"r": {"policy": "reflective", "local": "qwen", "frontier": "qwen",
                            "request_model": {"kind": "text", "bound": "lower"}}}}
    with pytest.raises(ConfigError) as e:
        parse_config(yaml.safe_dump(cfg))
    assert "routes.r.request_model.bound: Input should be 'none', 'count' or 'model'" in e.value.message
