"""`request_model.cap: credible`: the text model's estimate of a request never exceeds the upper edge of its task
type's own two-sided credible interval, so a type whose own verdicts put it credibly below the target keeps its
requests on the frontier however high the text model (pooled over every type) rates them, while a type with little
evidence is still left to the model. Through `LearningLoop` (the code the `reflective` route and the replay both
run), with the text model stubbed to say q for every prompt (`test_request_bound.stub_loop`).

At credible 0.6 the upper edge is the 80% quantile of the type's Beta(1 + good, 1 + bad).
"""

from __future__ import annotations

import pytest

from tests.learning.test_request_bound import TEXT, stub_loop, with_state


@pytest.mark.parametrize(("cap", "tier", "good", "bad", "q", "expect"), [
    # 26 of 40 accepted: Beta(27, 15), upper edge 0.706 < 0.75: credibly below; the model's 0.85 is capped
    ("none", "frontier", 26, 14, 0.85, "local"),
    ("credible", "frontier", 26, 14, 0.85, "frontier"),
    # 30 of 40: Beta(31, 11), upper edge 0.796 >= 0.75: not credibly below, the model still picks its requests
    ("credible", "frontier", 30, 10, 0.85, "local"),
    ("credible", "frontier", 30, 10, 0.74, "frontier"),
    # 2 of 3: Beta(3, 2), upper edge 0.788: too little evidence to overrule the model
    ("credible", "frontier", 2, 1, 0.85, "local"),
    # a local type (36 of 40: upper edge 0.924): its requests are the model's as before
    ("credible", "local", 36, 4, 0.85, "local"),
    ("credible", "local", 36, 4, 0.70, "frontier"),
])
def test_the_text_models_estimate_is_capped_at_the_types_credible_upper_edge(cap, tier, good, bad, q, expect,
                                                                            monkeypatch) -> None:
    loop = stub_loop("none", q, monkeypatch, cap=cap)
    with_state(loop, tier, good, bad)
    assert loop.plan("t", "probe", text=TEXT).tier == expect


def test_cap_is_a_known_setting() -> None:
    from pydantic import ValidationError

    from tierwise.learning.request_model_settings import RequestModelSettings

    assert RequestModelSettings().cap == "none"
    with pytest.raises(ValidationError):
        RequestModelSettings(cap="type")


@pytest.mark.parametrize(("good", "bad", "q", "expect"), [
    # the model's running mean over the type's requests is 0.85
    (26, 14, 0.84, "frontier"),  # credibly below (upper edge 0.706) and rated under the type's mean: capped
    (26, 14, 0.86, "local"),     # rated above it: keeps the model's estimate
    (30, 10, 0.80, "local"),     # not credibly below (upper edge 0.796): the model decides, as without a cap
])
def test_half_caps_only_the_requests_rated_under_the_types_running_mean(good, bad, q, expect, monkeypatch) -> None:
    loop = stub_loop("none", q, monkeypatch, cap="half")
    with_state(loop, "frontier", good, bad)
    loop.text_mean["t"] = 0.85
    assert loop.plan("t", "probe", text=TEXT).tier == expect
    assert 0.85 > loop.text_mean["t"] if q < 0.85 else loop.text_mean["t"] > 0.85  # the mean follows the requests
