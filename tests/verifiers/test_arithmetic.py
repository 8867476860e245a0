from __future__ import annotations

import pytest

from tierwise.verifiers.arithmetic import ArithmeticVerifier, final_answer, find_equations
from tierwise.verifiers.base import VerifyContext
from tierwise.verifiers.calculator import CalcError, evaluate

from .helpers import req, resp


def test_calculator_evaluates_plain_arithmetic() -> None:
    assert evaluate("(80000 + 50000) * 1.5") == 195000
    assert evaluate("2 ** 10 - 7 // 2 % 5") == 1021
    assert evaluate("-3 + +4") == 1


@pytest.mark.parametrize("expr", ["__import__('os').system('x')", "open('f')", "a + 1", "[1, 2]", "1 if 1 else 2",
                                  "9 ** 9 ** 9", "1 / 0", "1e308 * 1e10", "(" * 500 + "1" + ")" * 500, "1" * 400])
def test_calculator_refuses_anything_else(expr: str) -> None:
    with pytest.raises(CalcError):
        evaluate(expr)


def test_finds_prose_annotations_chains_currency_and_percent() -> None:
    text = ("She has 16 - 3 = 13 eggs. Sells 9 × $2 = $18.\n"
            "Total $80,000 + $50,000 = $130,000 and 150% * 50,000 = 75,000.\n"
            "So 2 + 1/2 = 5/2 = 2.5 bolts, and 8 x $5 = $<<8*5=40>>40. 16 \\* 3/4 = 12.")
    eqs = find_equations(text)
    assert all(e.correct for e in eqs), [e for e in eqs if not e.correct]
    assert len(eqs) >= 8


def test_flags_a_wrong_step_and_a_wrong_annotation() -> None:
    eqs = find_equations("First 12 + 15 = 28, then <<28*2=54>>54.")
    assert [e.correct for e in eqs] == [False, False]


def test_running_total_misuse_of_equals_is_not_flagged() -> None:
    assert all(e.correct for e in find_equations("3 + 4 = 7 * 2 = 14"))


def test_final_answer_prefers_markers() -> None:
    assert final_answer("... 12 then 30.\n#### 1,250") == 1250
    assert final_answer("The answer is $42.") == 42
    assert final_answer("We get 7 apples") == 7
    assert final_answer("no numbers") is None


async def test_verifier_passes_correct_work_and_fails_a_slip() -> None:
    v = ArithmeticVerifier(require_final_answer=True)
    good = await v(req(), resp("16 - 3 = 13 and 13 - 4 = 9, so 9 * 2 = 18.\n#### 18"), VerifyContext())
    assert good.passed and good.score == 1.0
    bad = await v(req(), resp("16 - 3 = 13 and 13 - 4 = 8, so 8 * 2 = 16.\n#### 16"), VerifyContext())
    assert not bad.passed
    assert "13 - 4 = 8" in bad.reason and bad.score is not None and bad.score < 1


async def test_verifier_format_checks() -> None:
    v = ArithmeticVerifier(require_final_answer=True, expect_integer=True)
    ctx = VerifyContext()
    assert "no final answer" in (await v(req(), resp("2 + 2 = 4 so far"), ctx)).reason
    cut = await v(req(), resp("2 + 2 = 4", stop_reason="max_tokens"), ctx)
    assert not cut.passed and "cut off" in cut.reason
    half = await v(req(), resp("5 / 2 = 2.5\n#### 2.5"), ctx)
    assert not half.passed and "whole number" in half.reason
    none = await ArithmeticVerifier(min_equations=1)(req(), resp("It is 4."), ctx)
    assert not none.passed
