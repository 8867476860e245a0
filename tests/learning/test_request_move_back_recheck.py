"""`request_model.after_move_back: checked` after its check decided for the target (round 30): a drift that starts
then must still take the type off the text model. The check's statistic is floored at its decision (one rejection
re-opens it, and the requests the model serves are judged again until it decides), and while it stands decided the
requests the model serves are audited at the local tier's `audit_rate` (before, only the type's own frontier
schedule judged it, and the statistic summed every acceptance since the move back: after 50 verdicts a drift was
never cut off). Scripted streams through `LearningLoop`, as test_request_move_back_check.py."""

from __future__ import annotations

import math

import pytest

from tierwise.learning.drift import check_step, drop_odds, recheck_rate
from tierwise.learning.loop import LearningLoop

from .test_request_after_move_back import ask, moved_back, probe
from .test_request_move_back_check import again, plans

H = math.log(10.0)  # ln(check_odds)


def decided(cycles: int = 13) -> LearningLoop:
    """`qa` moved back below the target, then verdicts at the target (one rejection, three acceptances, `cycles`
    times: its posterior stays under the move-local bound): the check decided for it long ago."""
    loop = moved_back("checked", "below-target")
    for j, x in enumerate([0.0, 1.0, 1.0, 1.0] * cycles):
        ask(loop, "qa", 3000 + j, x)
    st = loop.boundary.state("qa")
    assert st.tier == "frontier" and st.sent_back == 1 and st.judged == 4 * cycles
    assert drop_odds(st.good, st.judged, 0.75) <= -H  # the sum since the move back: far past the decision
    assert probe(loop, "qa") == "local"
    return loop


def test_a_drift_after_the_check_decided_takes_the_type_off_the_text_model_within_a_few_rejections(tmp_path) -> None:
    loop = again(decided(), "checked", tmp_path)  # (its schedule judges only its sample)
    st = loop.boundary.state("qa")
    assert st.check == -H and st.check_run == 0  # floored at the decision
    ask(loop, "qa", 5000, 0.0)  # the first rejected verdict after the drift re-opens the check
    assert loop._model_back(st) == 2
    ps = plans(loop, 200)  # its served requests judged again, in proportion to how far it went toward the drop
    checks = sum(p.reason == "move-back-check (within-type)" for p in ps)
    assert 10 <= checks <= 60 and all(not p.shadow for p in ps)  # recheck_rate: 0.15 of 200
    for j in range(1, 7):  # seven rejections in all: from -ln 10 to the drop's +ln 10
        ask(loop, "qa", 5000 + j, 0.0)
    assert st.check >= H
    assert probe(loop, "qa") == "frontier"
    assert probe(loop, "good") == "local"  # other types untouched


def test_a_lone_rejection_after_the_decision_costs_the_verdicts_that_answer_it() -> None:
    loop = decided(5)
    st = loop.boundary.state("qa")
    ask(loop, "qa", 6000, 0.0)
    assert loop._model_back(st) == 2 and st.check_run == 1
    ask(loop, "qa", 6001, 1.0)
    assert loop._model_back(st) == 2
    ask(loop, "qa", 6002, 1.0)  # two acceptances outweigh one rejection: decided again, the run restarts
    assert loop._model_back(st) == 1 and st.check == -H and st.check_run == 0
    assert probe(loop, "qa") == "local"


def test_requests_the_model_serves_once_decided_are_audited_at_the_local_audit_rate(tmp_path) -> None:
    restored = again(decided(), "checked", tmp_path)
    ps = plans(restored, 1000)
    assert sum(p.tier == "local" for p in ps) >= 990  # (the text model rates a stray prompt under the target)
    audits = sum(p.reason == "move-back-audit (within-type)" for p in ps)
    assert 5 <= audits <= 45  # `schedule.audit_rate` 0.02 of 1,000 (a hash sample)
    assert all(not p.shadow for p in ps if p.judge)


def test_the_check_survives_a_restore_and_an_older_state_reads_as_the_sum_since_the_move_back(tmp_path) -> None:
    loop = decided(5)
    ask(loop, "qa", 7000, 0.0)
    st = loop.boundary.state("qa")
    saved = loop.boundary.dump()
    assert saved["qa"]["check"] == st.check and saved["qa"]["check_run"] == 1 and saved["qa"]["check_decided"]
    restored = again(loop, "checked", tmp_path)
    rs = restored.boundary.state("qa")
    assert (rs.check, rs.check_run, rs.check_decided) == (st.check, st.check_run, True)
    assert restored._model_back(rs) == 2
    old = {k: v for k, v in saved["qa"].items() if k not in ("check", "check_run")}
    restored.boundary.load({"qa": old})
    assert rs.check == drop_odds(st.good, st.judged, 0.75) and rs.check_run == st.judged
    for field, bad in (("check", float("nan")), ("check", float("inf")), ("check", "x"), ("check", None),
                       ("check_decided", "yes"), ("check_run", "x")):
        restored.boundary.load({"qa": {**saved["qa"], field: bad, "tier": "local"}})
        assert rs.tier == "frontier"  # a malformed check skips the type's whole state


def test_check_recheck_false_is_round_29s_check() -> None:
    loop = decided()
    loop.settings.request_model.check_recheck = False
    st = loop.boundary.state("qa")
    st.check, st.check_run = drop_odds(st.good, st.judged, 0.75), st.judged  # (the sum since the move back)
    for j in range(7):
        ask(loop, "qa", 5000 + j, 0.0)
    assert st.check == pytest.approx(drop_odds(st.good, st.judged, 0.75)) and st.check < H
    assert probe(loop, "qa") == "local"  # round 29's gap: the drift is still served
    assert not any(p.reason.startswith("move-back") for p in plans(loop, 200))


def test_check_step_is_drop_odds_verdict_by_verdict_floored_at_the_decision() -> None:
    s = 0.0
    for good in (True, False, True):
        s = check_step(s, good, 0.75, H)
    assert s == drop_odds(2, 3, 0.75)
    for _ in range(40):
        s = check_step(s, True, 0.75, H)
    assert s == -H
    assert check_step(s, False, 0.75, H) == -H + math.log(2.0)
    assert check_step(-50.0, True, 0.75, math.inf) < -50.0  # no floor: round 29's sum
    assert (recheck_rate(-H, H), recheck_rate(0.0, H), recheck_rate(H, H), recheck_rate(9.0, H)) == (0.0, 0.5, 1.0, 1.0)
