"""Answers written to hurt the verifiers: inputs that made backtracking regular expressions take
seconds (or for ever) on the event loop (issue 15, item 4). Each check must come back with a
verdict, and the event loop must keep running other tasks while it runs (a ticker counts)."""

from __future__ import annotations

import asyncio

import pytest

from tierwise.canonical import Message, Request, Response, ResponseFormat, TextBlock
from tierwise.verifiers.arithmetic import ArithmeticVerifier, analyse
from tierwise.verifiers.base import Verdict, VerifyContext
from tierwise.verifiers.code import PythonCodeVerifier
from tierwise.verifiers.json_check import JsonSchemaVerifier, JsonVerifier
from tierwise.verifiers.judge import parse_grade
from tierwise.verifiers.patterns import RegexVerifier
from tierwise.verifiers.text import fenced_blocks

# Sizes chosen so the old code finishes (slowly) instead of hanging the test run.
BACKTICKS = "`" * 30_000
DIGITS = "1" * 20_000
CRAFTED_LINES = ("1 " * 990 + "=\n") * 10
ANNOTATION = "<<1=" + "1" * 20_000
PERCENT = "7" * 20_000 + " x"


def req(rf: ResponseFormat | None = None) -> Request:
    return Request(model="m", messages=[Message("user", [TextBlock("q")])], response_format=rf)


def answer(text: str) -> Response:
    return Response(id="r", model="m", content=[TextBlock(text)])


async def with_ticker(coro) -> tuple[Verdict, int]:
    ticks = 0
    stop = False

    async def tick() -> None:
        nonlocal ticks
        while not stop:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.ensure_future(tick())
    try:
        verdict = await coro
    finally:
        stop = True
        await t
    return verdict, ticks - 1  # the last tick may come after the check ended


CASES = [
    ("arithmetic", ArithmeticVerifier(), None, DIGITS),
    ("arithmetic", ArithmeticVerifier(), None, CRAFTED_LINES),
    ("arithmetic", ArithmeticVerifier(), None, ANNOTATION),
    ("arithmetic", ArithmeticVerifier(), None, PERCENT),
    ("json", JsonVerifier(), None, BACKTICKS),
    ("json_schema", JsonSchemaVerifier({"type": "string", "pattern": "^(a+)+$"}), None,
     '"' + "a" * 26 + '!"'),
    ("json_schema_client", JsonSchemaVerifier(), ResponseFormat(
        type="json_schema", schema={"type": "object", "patternProperties": {"^(a|aa)+$": {}},
                                    "additionalProperties": False}), '{"' + "a" * 30 + '!": 1}'),
    ("regex", RegexVerifier(r"^(\w+\s?)*$"), None, "word " * 6 + "!"),
    ("regex", RegexVerifier(r"(a+)+b"), None, "a" * 26),
]


@pytest.mark.parametrize("name,verifier,rf,text", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_hostile_answer_gets_a_verdict_while_the_loop_keeps_running(name, verifier, rf, text):
    verdict, ticks = asyncio.run(with_ticker(verifier(req(rf), answer(text), VerifyContext())))
    assert isinstance(verdict, Verdict) and verdict.reason
    assert ticks > 0, f"{name}: the event loop ran nothing else while the check ran"


def test_a_catastrophic_user_regex_is_a_failed_verdict_not_a_hang():
    v = RegexVerifier(r"^(a|a?)+$")
    assert "timeout" in vars(v), "the pattern runs without a time limit (and would hang this test)"
    v.timeout = 0.05  # small, so the test is quick; the default is REGEX_TIMEOUT_S
    verdict = asyncio.run(v(req(), answer("a" * 5_000 + "!"), VerifyContext()))
    assert not verdict.passed
    assert "took longer" in verdict.reason


def test_a_regex_that_forbids_text_and_runs_out_of_time_does_not_pass():
    v = RegexVerifier(r"^(a|a?)+$", must_match=False)
    assert "timeout" in vars(v), "the pattern runs without a time limit (and would hang this test)"
    v.timeout = 0.05
    verdict = asyncio.run(v(req(), answer("a" * 5_000 + "!"), VerifyContext()))
    assert not verdict.passed


def test_code_fences_made_of_backticks():
    assert fenced_blocks("`" * 100_000) == []
    assert fenced_blocks("```py\n" * 20_000) == [("py", "")] * 10_000
    verdict = asyncio.run(PythonCodeVerifier()(req(), answer("`" * 100_000), VerifyContext()))
    assert isinstance(verdict, Verdict)


def test_arithmetic_answers_stay_correct_after_the_rewrite():
    r = analyse("16 - 3 = 13 and 2 + 2 = 5 then 4.5.1 + 1 = 2\n<<48/2=24>>\n#### 24")
    assert [(e.left, e.right, e.correct) for e in r.equations] == [
        (24.0, 24.0, True), (13.0, 13.0, True), (4.0, 5.0, False), (2.0, 2.0, True)]
    assert r.final == 24 and r.final_marked


def test_judge_reply_with_a_long_run_of_spaces():
    assert parse_grade("verdict" + " " * 100_000) is None
    assert parse_grade("reasoning...\nVERDICT: good") == "good"
    assert parse_grade("Verdict ** : ** acceptable") == "acceptable"
