"""`request_model.check_margin` d on `after_move_back: checked`: the check weighs the target + d against the target - d
(is what the model serves of a type moved back accepted above the target or below it?) instead of the target against
the change-point test's drop 2t - 1, and a check still undecided after `check_max` verdicts decides for the side its
ratio favours (the model serves the type only if that is the target's). Round 29's check let a type at 0.70 against a 0.75 target back onto the model (seed 0's `gsm8k`); this one
keeps it off and still lets a type at 0.90 back. Scripted streams through `LearningLoop`, as
test_request_move_back_check.py."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from tierwise.learning.drift import check_pair, check_step, drop_odds
from tierwise.learning.loop import LearningLoop
from tierwise.learning.request_model_settings import RequestModelSettings

from .test_request_after_move_back import ask, moved_back, probe

H = math.log(10.0)
SEVEN_OF_TEN = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0]  # a type at 0.70 (target 0.75)
NINE_OF_TEN = [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # a type at 0.90


def checked(margin: float | None) -> LearningLoop:
    loop = moved_back("checked", "below-target")
    loop.settings.request_model.check_margin = margin
    loop.boundary.settings.credible = (
        0.9999  # (the type's posterior does not move it local again within these tests)
    )
    return loop


def feed(loop: LearningLoop, verdicts: list[float], start: int) -> None:
    for j, x in enumerate(verdicts):
        ask(loop, "qa", start + j, x)
        assert (
            loop.boundary.tier("qa") == "frontier"
        )  # (the check's verdicts never move the type itself here)


def test_the_pair_and_the_steps() -> None:
    assert check_pair(0.75) == (0.75, pytest.approx(0.5))  # round 29's: the target against 2t - 1
    assert check_pair(0.75, 0.05) == (pytest.approx(0.80), pytest.approx(0.70))
    assert check_pair(0.75, 0.2) == (pytest.approx(0.95), pytest.approx(0.55))
    assert check_pair(0.8, 0.2) == (pytest.approx(0.99), pytest.approx(0.6))  # (the good side capped at 0.99)
    assert drop_odds(1, 1, 0.75, 0.05) == pytest.approx(math.log(0.70 / 0.80))
    assert drop_odds(0, 1, 0.75, 0.05) == pytest.approx(math.log(0.30 / 0.20))
    assert drop_odds(7, 10, 0.75, 0.05) > 0.0 > drop_odds(7, 10, 0.75)  # 0.70: below the target, not a drop
    assert check_step(-H, False, 0.75, H, 0.05) == pytest.approx(-H + math.log(1.5))
    assert check_step(-H, True, 0.75, H, 0.05) == -H  # floored at the decision
    for t in (0.02, 0.5, 0.99, 1.0):  # the drop always under the target's side, both inside (0, 1)
        p0, p1 = check_pair(t, 0.05)
        assert 0.0 < p1 < p0 < 1.0


def test_a_type_served_at_seventy_percent_stays_off_the_model_with_the_margin_and_back_on_without() -> None:
    loops = {m: checked(m) for m in (None, 0.05)}
    for loop in loops.values():
        feed(loop, SEVEN_OF_TEN * 3, 2000)
    old, new = loops[None].boundary.state("qa"), loops[0.05].boundary.state("qa")
    assert old.check_decided and new.check > 0.0  # 21 of 30: the drop test decided for the target
    assert probe(loops[None], "qa") == "local"
    assert probe(loops[0.05], "qa") == "local"  # undecided (30 < check_max): served, each judged
    assert loops[0.05].plan("qa", "x-1", text="Please answer question 7 about the window.").judge
    assert loops[0.05]._model_back(new) == 2 and loops[None]._model_back(old) != 0
    for loop in loops.values():
        feed(loop, SEVEN_OF_TEN * 2, 3000)
    assert loops[0.05].boundary.state("qa").check_run == 50  # undecided at check_max ...
    assert loops[0.05].boundary.state("qa").check < H
    assert probe(loops[0.05], "qa") == "frontier"  # ... leaves the model off the type
    assert probe(loops[None], "qa") == "local"
    assert probe(loops[0.05], "good") == "local"  # a type never moved back is left alone


def test_a_type_served_at_ninety_percent_is_let_back_and_a_later_drop_takes_it_off() -> None:
    loop = checked(0.05)
    feed(loop, NINE_OF_TEN * 2, 2000)
    assert loop.boundary.state("qa").check > -H  # 18 of 20: not yet
    feed(loop, NINE_OF_TEN, 2100)
    st = loop.boundary.state("qa")
    assert st.check == -H and st.check_decided  # 27 of 30 decides for the target
    ps = [loop.plan("qa", f"y-{j}", text="Please answer question 8 about the window.") for j in range(20)]
    assert all(p.tier == "local" for p in ps)
    assert not any(p.reason.startswith("move-back-check") for p in ps)  # decided: not judged for the check
    # after the decision each rejection adds ln(0.30 / 0.20): 11 keep the check open, the 12th takes the model off
    feed(loop, [0.0] * 11, 2200)
    assert loop.boundary.state("qa").check < H and probe(loop, "qa") == "local"
    feed(loop, [0.0], 2300)
    assert loop.boundary.state("qa").check >= H and probe(loop, "qa") == "frontier"


@pytest.mark.parametrize(
    ("margin", "verdicts", "tier"),
    [
        (None, [1.0, 0.0, 1.0], "local"),  # round 29's: undecided at check_max serves the type
        (0.05, [1.0, 0.0, 1.0], "frontier"),  # 2 of 3: the ratio leans to the drop (0.67 < 0.75)
        (0.05, [1.0, 1.0, 0.0, 1.0, 1.0], "local"),  # 4 of 5: it leans to the target
    ],
)
def test_at_check_max_the_margin_check_decides_for_the_side_its_ratio_favours(margin, verdicts, tier) -> None:
    loop = checked(margin)
    loop.settings.request_model.check_max = len(verdicts)
    feed(loop, verdicts, 2000)
    st = loop.boundary.state("qa")
    assert -H < st.check < H and st.check_run == len(verdicts)
    assert (st.check < 0.0) == (tier == "local") or margin is None
    ps = [loop.plan("qa", f"z-{j}", text="Please answer question 9 about the window.") for j in range(10)]
    assert {p.tier for p in ps} == {tier}
    assert not any(p.reason.startswith("move-back-check") for p in ps)  # no longer judged for the check


def test_the_setting() -> None:
    assert RequestModelSettings().check_margin is None
    assert RequestModelSettings(check_margin=0.05).check_margin == 0.05
    for bad in (0.0, 0.005, 0.6, -0.1, float("nan"), True, "x"):
        with pytest.raises(ValidationError):
            RequestModelSettings(check_margin=bad)


def test_tierwise_boundary_says_what_the_margin_check_weighs() -> None:
    import yaml

    from tests.harness import two_tier_config
    from tierwise.config import parse_config
    from tierwise.learning.evidence import model_serves

    route = {
        "policy": "reflective",
        "local": "local",
        "frontier": "frontier",
        "quality_target": 0.75,
        "request_model": {"after_move_back": "checked", "check_margin": 0.05},
    }
    cfg = parse_config(
        yaml.safe_dump(two_tier_config("http://127.0.0.1:9", "http://127.0.0.1:9", routes={"main": route}))
    )
    decided, open_ = checked(0.05), checked(0.05)
    feed(decided, NINE_OF_TEN * 3, 2000)
    feed(open_, SEVEN_OF_TEN * 3, 2000)
    said = model_serves(cfg, "main", decided.dump()["boundary"])["qa"]
    assert said.endswith(
        "not each judged: its check favours acceptance 0.80 over 0.70 (27 good of 30 judged since "
        "its move back)"
    ), said
    said = model_serves(cfg, "main", open_.dump()["boundary"])["qa"]
    assert said.endswith(
        "each judged: its check is undecided (21 good of 30 judged since its move back; decides at 10 "
        "to 1, or after 50 for the side it leans to)"
    ), said
