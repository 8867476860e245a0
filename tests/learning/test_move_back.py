"""`boundary.move_back`: when a local task type's posterior sends it back to the frontier (besides the change-point
test). `mean` (the default): its posterior mean is below the target; `credible`: the upper edge of its two-sided
credible interval is, the move-local rule mirrored. Expected decisions are computed here by the binomial identity
P(Beta(a, b) <= t) = P(Binomial(a + b - 1, t) >= a) (integer a, b), independently of the code's scipy call."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from tierwise.learning.boundary import Boundary, BoundarySettings, below_target
from tierwise.learning.loop import LearningLoop, LoopSettings
from tierwise.policies.reflective import ReflectiveConfig


def beta_cdf_by_binomial(a: int, b: int, t: float) -> float:
    n = a + b - 1
    return sum(math.comb(n, k) * t**k * (1.0 - t) ** (n - k) for k in range(a, n + 1))


def settings(move_back: str) -> BoundarySettings:
    # the replay's boundary: target 0.75, credible 0.60 (bounds at the 20% and 80% quantiles), no discount
    return BoundarySettings(quality_target=0.75, credible=0.60, discount=1.0, move_back=move_back)


@pytest.mark.parametrize(("a", "b"), [(6, 3), (6, 4), (17, 8), (19, 9), (30, 12), (8, 3)])
def test_the_credible_rule_is_the_upper_edge_of_the_interval(a: int, b: int) -> None:
    s = settings("credible")
    # the upper edge (80% quantile) is under 0.75 exactly when P(p <= 0.75) > 0.80
    assert below_target(a, b, s) == (beta_cdf_by_binomial(a, b, 0.75) > 0.80)
    assert below_target(a, b, settings("mean")) == (a / (a + b) < 0.75)


def test_the_hand_computed_cases() -> None:
    # Beta(6, 3): mean 0.667 (under the target) but P(p <= 0.75) = P(Bin(8, .75) >= 6) = 0.679 <= 0.80
    assert round(beta_cdf_by_binomial(6, 3, 0.75), 3) == 0.679
    assert below_target(6, 3, settings("mean")) and not below_target(6, 3, settings("credible"))
    # Beta(6, 4): P(Bin(9, .75) >= 6) = 0.834 > 0.80
    assert round(beta_cdf_by_binomial(6, 4, 0.75), 3) == 0.834
    assert below_target(6, 4, settings("credible"))


def _local_after_five_accepted(move_back: str) -> Boundary:
    b = Boundary(settings(move_back))
    moves = [b.observe("law", 1.0) for _ in range(5)]
    # Beta(6, 1): its 20% quantile 0.2 ** (1/6) = 0.7647 clears 0.75 at the fifth verdict
    assert [m.to if m else None for m in moves] == [None, None, None, None, "local"]
    return b


def test_mean_moves_back_after_two_rejections_credible_after_three() -> None:
    b = _local_after_five_accepted("mean")
    assert b.observe("law", 0.0) is None  # Beta(6, 2): mean 0.75, not under
    back = b.observe("law", 0.0)  # Beta(6, 3): mean 0.667
    assert back is not None and back.to == "frontier" and back.why == "below-target"

    b = _local_after_five_accepted("credible")
    assert b.observe("law", 0.0) is None
    assert b.observe("law", 0.0) is None  # Beta(6, 3): P(p <= .75) = 0.679, stays local
    back = b.observe("law", 0.0)  # Beta(6, 4): 0.834
    assert back is not None and back.to == "frontier" and back.why == "below-target"
    assert (back.good, back.judged) == (0, 3)


def test_a_type_above_the_target_keeps_its_tier_through_a_dip() -> None:
    # local at 5 of 5, then two rejections and five rounds of 3 accepted in 4: the mean stays just under 0.75
    # (Beta(6 + 3k, 3 + k)), the interval keeps holding it (P(p <= .75) at most 0.679, at k = 0)
    verdicts = [1.0] * 5 + [0.0, 0.0] + [1.0, 1.0, 1.0, 0.0] * 5
    moves = {}
    for rule in ("mean", "credible"):
        b = Boundary(settings(rule))
        moves[rule] = [(i, m.to) for i, x in enumerate(verdicts) if (m := b.observe("math", x)) is not None]
    assert moves["mean"] == [(4, "local"), (6, "frontier")]
    assert moves["credible"] == [(4, "local")]
    assert max(beta_cdf_by_binomial(6 + 3 * k, 3 + k, 0.75) for k in range(6)) == beta_cdf_by_binomial(6, 3, 0.75)


def test_the_change_point_test_is_unchanged() -> None:
    # a drop to nothing on a long-local type: the change-point test fires at the same verdict under both rules
    at = {}
    for rule in ("mean", "credible"):
        b = Boundary(BoundarySettings(quality_target=0.8, discount=1.0, move_back=rule))
        at[rule] = first_move_back_after_a_drop(b)
    assert at["mean"] == at["credible"] and at["mean"][1] == "drift"


def test_the_leave_out_check_of_the_keys_uses_the_same_rule() -> None:
    # a move back must also hold without the key pushing hardest for it (k1: 2 of 6 accepted) and the key pushing
    # against it (k2: 9 of 10); what is left is k3's 5 of 7 on the prior, Beta(6, 3): under the mean rule the move
    # holds (0.667), under the credible rule it does not (P(p <= .75) = 0.679 <= 0.80)
    for rule, holds in (("mean", True), ("credible", False)):
        b = Boundary(settings(rule))
        st = b.state("law")
        st.tier, st.a, st.b = "local", 17.0, 8.0
        st.by_key = {"k1": [2.0, 4.0], "k2": [9.0, 1.0], "k3": [5.0, 2.0]}
        assert b._holds_without_extremes(st, "frontier", st.by_key) is holds, rule


def test_default_config_and_errors() -> None:
    assert BoundarySettings().move_back == "mean"
    assert LoopSettings().boundary.move_back == "mean"
    loop = LearningLoop("r", LoopSettings.model_validate({"boundary": {"move_back": "credible"}}))
    assert loop.boundary.settings.move_back == "credible"
    cfg = ReflectiveConfig.model_validate({"local": "l", "frontier": "f", "boundary": {"move_back": "credible"}})
    assert cfg.boundary.move_back == "credible"
    with pytest.raises(ValidationError, match="move_back"):
        BoundarySettings.model_validate({"move_back": "upper"})


def test_the_boundary_table_states_the_rule_the_type_moves_back_by() -> None:
    from types import SimpleNamespace

    from tierwise.learning.evidence import acceptance

    def row(rule: str) -> dict:
        route = ReflectiveConfig.model_validate({"local": "l", "frontier": "f", "quality_target": 0.75,
                                                 "boundary": {"credible": 0.60, "move_back": rule}})
        return acceptance(SimpleNamespace(routes={"r": route}), "r", 6.0, 3.0, "local")

    assert row("mean")["sentence"] == "acceptance mean 0.67, back to the frontier below 0.75"
    r = row("credible")
    assert r["upper"] > 0.75  # P(p <= .75) = 0.679 < 0.80: the 80% quantile is above the target
    assert r["sentence"] == f"acceptance upper bound {r['upper']:.2f}, back to the frontier below 0.75"


def first_move_back_after_a_drop(b: Boundary) -> tuple[int, str] | None:
    """200 good verdicts move `extraction` local; then poor ones: after how many (and why) it moved back."""
    for _ in range(200):
        b.observe("extraction", 1.0)
    assert b.tier("extraction") == "local"
    for i in range(40):
        m = b.observe("extraction", 0.0)
        if m is not None:
            return i, m.why
    return None
