"""`request_model.after_move_back: checked`: the text model serves a type moved back by the below-target rule only
while the verdicts since its move back do not favour a drop (a sequential test from the quality target to the drop
the change-point test looks for), and each request it serves locally is judged until the test decides. A type sent
back by an unlucky run keeps being served; a drifted one is taken off the model after a few verdicts (round 28's
`below-target` kept serving it). Scripted streams through `LearningLoop`, as test_request_after_move_back.py."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from tierwise.learning.drift import drop_odds
from tierwise.learning.loop import LearningLoop, LoopSettings
from tierwise.learning.request_model_settings import RequestModelSettings

from .test_request_after_move_back import PROMPT, ask, moved_back, probe


def again(loop: LearningLoop, mode: str, tmp_path, first_uses: int = 0) -> LearningLoop:
    """The loop's learned state in a loop whose schedule judges only its sample (`first_uses: 0`)."""
    path = tmp_path / f"state-{mode}.json"
    loop.save(path)
    new = LearningLoop("r", LoopSettings.model_validate({
        "schedule": {"first_uses": first_uses, "shadow_stop_after": 10_000},
        "boundary": {"quality_target": 0.75, "credible": 0.6, "discount": 1.0, "drift_credible": 0.9999999999},
        "request_model": {"kind": "text", "weight": 1.0, "min_rows": 20, "refit_every": 5, "alpha": 3.0,
                          "after_move_back": mode}}))
    assert new.restore(path)
    return new


def plans(loop: LearningLoop, n: int = 20) -> list:
    return [loop.plan("qa", f"p-{j}", text=PROMPT.format(j=500 + j, w="window")) for j in range(n)]


def test_undecided_a_request_the_model_serves_of_a_type_moved_back_is_judged_on_the_local_answer(tmp_path) -> None:
    checked = again(moved_back("checked", "below-target"), "checked", tmp_path)
    st = checked.boundary.state("qa")
    assert st.tier == "frontier" and st.sent_back == 1 and st.judged == 0
    ps = plans(checked)
    assert all(p.tier == "local" and p.judge and not p.shadow for p in ps)  # (some on the schedule's own sample)
    assert sum(p.reason.startswith("move-back-check") for p in ps) >= len(ps) // 2
    # round 28's rule serves them too, judged only on the schedule's sample
    below = plans(again(moved_back("below-target", "below-target"), "below-target", tmp_path))
    assert all(p.tier == "local" for p in below) and sum(p.judge for p in below) < len(below)


def test_verdicts_since_the_move_back_that_favour_a_drop_take_the_type_off_the_text_model() -> None:
    loops = {m: moved_back(m, "below-target") for m in ("checked", "below-target")}
    for loop in loops.values():
        for j in range(4):  # four rejections: odds of 16:1 for the drop (0.5 against 0.75)
            ask(loop, "qa", 2000 + j, 0.0)
        st = loop.boundary.state("qa")
        assert st.tier == "frontier" and st.judged == 4 and st.good == 0
    assert probe(loops["checked"], "qa") == "frontier"
    assert probe(loops["below-target"], "qa") == "local"  # round 28's leak
    assert probe(loops["checked"], "good") == "local"  # a type never moved back is left alone


def test_verdicts_that_favour_the_target_keep_the_model_serving_without_judging_each_request(tmp_path) -> None:
    loop = moved_back("checked", "below-target")
    # one rejection, then acceptances until the odds favour the target by 10:1 (the type stays on the frontier)
    verdicts = [0.0] + [1.0] * 9
    for j, x in enumerate(verdicts):
        ask(loop, "qa", 3000 + j, x)
    st = loop.boundary.state("qa")
    assert st.tier == "frontier" and (st.judged, st.good) == (10, 9)
    assert drop_odds(st.good, st.judged, 0.75) <= -math.log(10.0)
    restored = again(loop, "checked", tmp_path)  # the verdicts since the move back are in the saved state
    ps = plans(restored)
    assert all(p.tier == "local" for p in ps)
    assert sum(p.judge for p in ps) < len(ps)  # decided: the schedule's sample only


def test_the_check_stops_judging_after_check_max_verdicts(tmp_path) -> None:
    loop = moved_back("checked", "below-target")
    for j, x in enumerate([1.0, 0.0, 1.0]):  # undecided
        ask(loop, "qa", 4000 + j, x)
    restored = again(loop, "checked", tmp_path)
    assert all(p.judge for p in plans(restored, 5))
    restored.settings.request_model.check_max = 3
    ps = plans(restored)
    assert all(p.tier == "local" for p in ps) and sum(p.judge for p in ps) < len(ps)


def test_drop_odds_and_the_settings() -> None:
    assert drop_odds(0, 0, 0.75) == 0.0
    assert drop_odds(0, 1, 0.75) == pytest.approx(math.log(0.5 / 0.25))
    assert drop_odds(1, 1, 0.75) == pytest.approx(math.log(0.5 / 0.75))
    assert RequestModelSettings().check_odds == 10.0 and RequestModelSettings().check_max == 50
    for bad in ({"check_odds": 1.0}, {"check_odds": float("nan")}, {"check_max": 0}, {"after_move_back": "x"}):
        with pytest.raises(ValidationError):
            RequestModelSettings(**bad)
