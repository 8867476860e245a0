"""The local judge learns verdicts from text, and its agreement is measured as kappa and accuracy."""

from __future__ import annotations

import pytest

from tierwise.learning.local_judge import LocalJudge, agreement, answers_agree, final_answer


def test_learns_a_separable_verdict_and_reports_agreement() -> None:
    prompts = [f"question {i}" for i in range(80)]
    answers = [("I am not sure, maybe " if i % 2 else "The answer is ") + str(i) for i in range(80)]
    accepted = [i % 2 == 0 for i in range(80)]
    j = LocalJudge().fit(prompts[:60], answers[:60], accepted[:60])
    a = agreement(accepted[60:], j.predict(prompts[60:], answers[60:]))
    assert a.n == 20 and a.accuracy == 1.0 and a.kappa == pytest.approx(1.0)
    with pytest.raises(ValueError, match="both"):
        LocalJudge().fit(["a", "b"], ["x", "y"], [True, True])


def test_pairwise_final_answers() -> None:
    assert final_answer("so she pays 1,250 dollars, then 18.") == "18"
    assert answers_agree("... = 72", "The total is 72.0") is True
    assert answers_agree("42", "43") is False
    assert answers_agree("no number", "42") is None


def test_kappa_is_zero_for_a_constant_judge() -> None:
    a = agreement([True, False, True, True], [True, True, True, True])
    assert a.kappa == 0.0 and a.accuracy == 0.75
