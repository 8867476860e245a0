"""`boundary.move_back_credible` (round 17, bench/RESULTS.md): the credible mass the credible move back reads, so a
local type can be asked for more evidence before it goes back than a frontier type before it moves local; unset, the
move back reads `credible` (rounds 14-16). Expected decisions by the binomial identity
P(Beta(a, b) <= t) = P(Binomial(a + b - 1, t) >= a) (integer a, b), independently of the code's scipy call."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from tests.learning.test_move_back import first_move_back_after_a_drop
from tierwise.learning.boundary import Boundary, BoundarySettings, below_target, move_back_mass
from tierwise.learning.evidence import acceptance
from tierwise.learning.loop import LearningLoop, LoopSettings
from tierwise.policies.reflective import ReflectiveConfig


def beta_cdf_by_binomial(a: int, b: int, t: float) -> float:
    n = a + b - 1
    return sum(math.comb(n, k) * t**k * (1.0 - t) ** (n - k) for k in range(a, n + 1))


def settings(back: float | None) -> BoundarySettings:
    # the replay's boundary: target 0.75, credible 0.60, no discount, the credible move back
    return BoundarySettings(quality_target=0.75, credible=0.60, discount=1.0, move_back="credible",
                            move_back_credible=back)


@pytest.mark.parametrize(("a", "b"), [(6, 4), (6, 5), (6, 6), (17, 8), (19, 9), (21, 10), (30, 12), (26, 14)])
def test_the_move_back_reads_its_own_mass(a: int, b: int) -> None:
    below = beta_cdf_by_binomial(a, b, 0.75)
    # at 0.90 the upper edge is the 95% quantile: under 0.75 exactly when P(p <= 0.75) > 0.95
    assert below_target(a, b, settings(0.90)) == (below > 0.95)
    # unset: the move-local rule's mass (0.60: the 80% quantile), as in rounds 14-16
    assert below_target(a, b, settings(None)) == (below > 0.80)


def test_mass_and_hand_computed_cases() -> None:
    assert move_back_mass(settings(None)) == 0.60 and move_back_mass(settings(0.90)) == 0.90
    # Beta(6, 4): P(Bin(9, .75) >= 6) = 0.834: back at 0.60, not at 0.90; Beta(6, 6): 0.966, back at both
    assert round(beta_cdf_by_binomial(6, 4, 0.75), 3) == 0.834
    assert below_target(6, 4, settings(None)) and not below_target(6, 4, settings(0.90))
    assert round(beta_cdf_by_binomial(6, 6, 0.75), 3) == 0.966
    assert below_target(6, 6, settings(0.90))
    # the move local is unchanged: Beta(6, 1)'s 20% quantile 0.2 ** (1/6) = 0.7647 clears 0.75 either way


def test_a_local_type_goes_back_after_three_rejections_or_five() -> None:
    for back, after in ((None, 3), (0.90, 5)):
        b = Boundary(settings(back))
        moves = [b.observe("law", 1.0) for _ in range(5)]
        assert [m.to if m else None for m in moves] == [None, None, None, None, "local"]
        got = [b.observe("law", 0.0) for _ in range(6)]
        first = next(i for i, m in enumerate(got) if m is not None) + 1
        # Beta(6, 1 + k): P(p <= .75) = 0.445, 0.679, 0.834, 0.922, 0.966 at k = 1..5
        assert first == after, back
        assert got[first - 1].to == "frontier" and got[first - 1].why == "below-target"


def test_the_watch_dip_of_a_type_above_the_target_no_longer_sends_it_back() -> None:
    # round 17's diagnosis (seed 167, mmlu/math, true acceptance 0.83): local on 9 of 10, then a streak of 12 of 21
    # accepted; at 0.60 the type goes back at the 28th verdict (Beta(20, 10): P(p <= .75) = 0.834 > 0.80), at 0.90
    # it stays local to the end (Beta(22, 11): 0.846 < 0.95)
    verdicts = [0.0] + [1.0] * 9 + [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0,
                                    1.0, 0.0, 1.0, 0.0, 1.0]
    back = {}
    for mass in (None, 0.90):
        b = Boundary(settings(mass))
        back[mass] = [(i, m.to) for i, x in enumerate(verdicts) if (m := b.observe("math", x)) is not None]
    assert back[0.90] == [back[None][0]] and back[0.90][0][1] == "local"
    assert back[None][1:] == [(27, "frontier")]
    assert round(beta_cdf_by_binomial(20, 10, 0.75), 3) == 0.834 and round(beta_cdf_by_binomial(22, 11, 0.75), 3) == 0.846


def test_a_drop_to_nothing_goes_back_by_the_change_point_test_at_the_same_verdict() -> None:
    at = {}
    for mass in (None, 0.90):
        b = Boundary(BoundarySettings(quality_target=0.8, credible=0.60, discount=1.0, move_back="credible",
                                      move_back_credible=mass))
        at[mass] = first_move_back_after_a_drop(b)
    assert at[None] == at[0.90] and at[None][1] == "drift"


def test_settings_and_the_boundary_table() -> None:
    assert BoundarySettings().move_back_credible is None
    loop = LearningLoop("r", LoopSettings.model_validate({"boundary": {"move_back": "credible",
                                                                       "move_back_credible": 0.9}}))
    assert move_back_mass(loop.boundary.settings) == 0.9
    for bad in (0.4, 1.0):
        with pytest.raises(ValidationError, match="move_back_credible"):
            BoundarySettings.model_validate({"move_back_credible": bad})
    route = ReflectiveConfig.model_validate({"local": "l", "frontier": "f", "quality_target": 0.75,
                                             "boundary": {"credible": 0.60, "move_back_credible": 0.90}})
    row = acceptance(SimpleNamespace(routes={"r": route}), "r", 6.0, 4.0, "local")
    # the table's upper bound is the one the move back reads (the 95% quantile of Beta(6, 4), above 0.75)
    assert row["upper"] > 0.75
    assert row["sentence"] == f"acceptance upper bound {row['upper']:.2f}, back to the frontier below 0.75"
