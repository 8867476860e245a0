"""`request_model.after_move_back`: the text model does not serve a type the boundary has moved back to the frontier
(`off`, the default), so a drifted type is not served locally on verdicts pooled over other types. With
`below-target` it still serves a type whose moves back were all by the below-target rule (never by the change-point
test), as it serves a frontier type that never moved. Scripted streams through `LearningLoop` (the code the
`reflective` route and the replay both run)."""

from __future__ import annotations

import pytest

from tierwise.learning.loop import LearningLoop, LoopSettings

# one prompt template for both types: the text model rates their requests alike
PROMPT = "Please answer question {j} about the {w} and give a short reason for the answer."
WORDS = ["cat", "dog", "tree", "house", "river", "bread", "cloud", "stone", "light", "chair", "music", "field"]


def make_loop(mode: str | None, drift_credible: float) -> LearningLoop:
    model = {"kind": "text", "weight": 1.0, "min_rows": 20, "refit_every": 5, "alpha": 3.0}
    if mode is not None:
        model["after_move_back"] = mode
    return LearningLoop("r", LoopSettings.model_validate({
        "schedule": {"first_uses": 1000, "shadow_stop_after": 10_000},  # every request judged
        "boundary": {"quality_target": 0.75, "credible": 0.6, "discount": 1.0, "drift_credible": drift_credible},
        "request_model": model}))


def ask(loop: LearningLoop, task_type: str, j: int, accepted: float):
    rid = f"{task_type}-{j}"
    loop.plan(task_type, rid, text=PROMPT.format(j=j, w=WORDS[j % len(WORDS)]))
    return loop.verdict(task_type, accepted, request_id=rid)


def moved_back(mode: str | None, why: str) -> LearningLoop:
    """`good` (0.90) fills the model's rows and stays local; `qa` moves local, then every answer is rejected until it
    moves back: by the below-target rule (a short local history, the change-point test made very slow), or by the
    change-point test (a long history at 0.95 that the below-target rule would take many rejections to overturn)."""
    below = why == "below-target"
    loop = make_loop(mode, 0.9999999999 if below else 0.999)
    for j in range(120):
        ask(loop, "good", j, 0.0 if j % 10 == 9 else 1.0)
    for j in range(5 if below else 100):
        ask(loop, "qa", j, 0.0 if (not below and j % 20 == 19) else 1.0)
    assert loop.boundary.tier("qa") == "local"
    j, move = 1000, None
    while move is None:
        move = ask(loop, "qa", j, 0.0)
        j += 1
        assert j < 1100
    assert move.to == "frontier" and move.why == why
    return loop


def probe(loop: LearningLoop, task_type: str) -> str:
    return loop.plan(task_type, f"probe-{task_type}", text=PROMPT.format(j=999, w="window")).tier


def test_by_default_the_text_model_stays_off_a_type_moved_back_below_the_target() -> None:
    loop = moved_back(None, "below-target")
    assert loop.settings.request_model.after_move_back == "off"
    rm = loop.request_model
    assert rm.estimate(rm.features(PROMPT.format(j=999, w="window"), "qa")) >= 0.75  # the pooled model would serve it
    assert probe(loop, "qa") == "frontier"
    assert probe(loop, "good") == "local"


def test_below_target_a_type_moved_back_by_the_below_target_rule_is_served_by_the_text_model() -> None:
    loop = moved_back("below-target", "below-target")
    st = loop.boundary.state("qa")
    assert st.sent_back == 1 and st.drifted == 0
    assert probe(loop, "qa") == "local"
    assert probe(loop, "good") == "local"


@pytest.mark.parametrize("mode", ["off", "below-target", "checked"])
def test_a_type_the_change_point_test_moved_back_stays_off_the_text_model(mode: str) -> None:
    loop = moved_back(mode, "drift")
    st = loop.boundary.state("qa")
    assert st.drifted == 1 and st.sent_back == 0
    rm = loop.request_model
    assert rm.estimate(rm.features(PROMPT.format(j=999, w="window"), "qa")) >= 0.75
    assert probe(loop, "qa") == "frontier"


def test_the_moves_back_by_the_change_point_test_survive_a_restore(tmp_path) -> None:
    from pydantic import ValidationError

    from tierwise.learning.request_model_settings import RequestModelSettings

    with pytest.raises(ValidationError):
        RequestModelSettings(after_move_back="always")
    loop = moved_back("below-target", "drift")
    path = tmp_path / "state.json"
    loop.save(path)
    again = make_loop("below-target", 0.999)
    assert again.restore(path)
    assert again.boundary.state("qa").drifted == 1
    assert probe(again, "qa") == "frontier"  # still off the text model after the restart
