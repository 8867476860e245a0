"""Checks the arithmetic a model wrote down (`16 - 3 = 13`, `$80,000 + $50,000 = $130,000`,
`2 + 1/2 = 5/2 = 2.5`, GSM8K's `<<48/2=24>>`) with the safe calculator, plus answer-format checks.

Why it works as a cascade gate: small models mostly fail math word problems by slipping in
one step or by stopping early, and both leave traces (a wrong equation, no final answer, a
final answer that no step computed). The verifier's score combines those signals so a
threshold can trade frontier calls for quality.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from tierwise.canonical import Request, Response
from tierwise.verifiers.base import Verdict, VerifyContext
from tierwise.verifiers.calculator import CalcError, evaluate
from tierwise.verifiers.offload import off_loop

# --------------------------------------------------------------------------- normalisation

_UNICODE_OPS = str.maketrans({"×": "*", "·": "*", "÷": "/", "−": "-", "–": "-", "⋅": "*", "∗": "*"})
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_CURRENCY = re.compile(r"[$€£¥]")
_TIMES_X = re.compile(r"(?<=[\d)%])\s*[xX]\s*(?=[\d(])")
# Every pattern here runs on model output (attacker-controlled): repeats are possessive and a
# pattern that starts with a digit run starts only where the run does, so no input makes one
# scan the same characters again and again (a digit run, long spaces, crafted lines used to
# take seconds).
_PERCENT = re.compile(r"(?<![\d.])(\d++(?:\.\d++)?+)\s*+%")
_NUMBER = r"(?>\d+(?:\.\d+)?)(?!\d)"  # atomic: a digit run is one number, never re-split
_MAX_LINE = 2000  # arithmetic chains are short lines; longer ones are not searched (bounded work per answer)
# A run of arithmetic with at least one '=': numbers, operators, parentheses and spaces on one
# line ('.' only inside a number, so a sentence's full stop ends the run).
_ATOM = rf"(?:{_NUMBER}|[()+\-*/^])"
_SIDE = rf"{_ATOM}(?:[ \t]*+{_ATOM})*+"
_SPAN = re.compile(rf"{_SIDE}(?:[ \t]*+=[ \t]*+{_SIDE})+")
_SIDE_AT = re.compile(_SIDE)
_ATOM_AT = re.compile(r"[\d()+\-*/^]")
_ANNOTATION = re.compile(r"<<([^<>=]++)=([^<>]++)>>")
_MARKED = r"(-?(?:\d[\d,]*+(?:\.\d++)?+|\.\d++))"
_FINAL_MARKERS = (
    re.compile(r"####\s*+\$?+\s*+" + _MARKED),
    re.compile(r"answer is[:\s]*+\$?+\s*+" + _MARKED, re.IGNORECASE),
    re.compile(r"\\boxed\{\s*+\$?+" + _MARKED + r"\s*+\}"),
)
_ANY_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def normalise_math(text: str) -> str:
    """Rewrite prose arithmetic into calculator syntax: unicode operators, 'x' for times,
    thousands separators, currency signs and percentages."""
    text = text.translate(_UNICODE_OPS).replace("\\*", "*")  # markdown-escaped '*'
    text = _THOUSANDS.sub("", text)
    text = _CURRENCY.sub("", text)
    text = _TIMES_X.sub(" * ", text)
    text = _PERCENT.sub(r"(\1/100)", text)
    return text.replace("^", "**")


def parse_number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").replace("$", "").strip())
    except ValueError:
        return None


def final_answer(text: str) -> float | None:
    """The answer's final number: after '####', 'the answer is', \\boxed{}, else the last number."""
    for marker in _FINAL_MARKERS:
        found = marker.findall(text)
        if found:
            return parse_number(found[-1])
    numbers = _ANY_NUMBER.findall(text)
    return parse_number(numbers[-1]) if numbers else None


def has_final_marker(text: str) -> bool:
    return any(m.search(text) for m in _FINAL_MARKERS)


# --------------------------------------------------------------------------- equations


@dataclass(frozen=True, slots=True)
class Equation:
    text: str
    left: float
    right: float
    correct: bool


def close(a: float, b: float, rel_tol: float) -> bool:
    """Equal within `rel_tol`, or an honest rounding of `a` to `b` (to 0–2 decimals)."""
    if math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-9):
        return True
    return any(round(a, d) == b for d in (0, 1, 2)) and abs(a) >= 1


def _value(part: str) -> float | None:
    part = part.strip()
    if not part:
        return None
    try:
        return evaluate(part)
    except CalcError:
        return None


_OPERATOR = re.compile(r"\d\s*+(?:[+*/]|\*\*|-)\s*+[\d(]")


def _has_operator(part: str) -> bool:
    return bool(_OPERATOR.search(part))


def _spans(line: str) -> list[str]:
    """What `_SPAN.finditer(line)` finds, without retrying at every atom of a run that fails.

    A failed attempt from an atom fails the same way from every later atom of its left side
    (their left sides end at the same place), so the next attempt starts where that side ends.
    """
    out: list[str] = []
    pos = 0
    while True:
        at = _ATOM_AT.search(line, pos)
        if at is None:
            return out
        m = _SPAN.match(line, at.start())
        if m is not None:
            out.append(m.group(0))
            pos = m.end()
            continue
        pos = _SIDE_AT.match(line, at.start()).end()  # type: ignore[union-attr]  # an atom is a side


def find_equations(text: str, rel_tol: float = 0.01) -> list[Equation]:
    """Every checkable equation in `text`, in order; chains `a = b = c` give one per '='."""
    out: list[Equation] = []
    for expr, result in _ANNOTATION.findall(text):
        left, right = _value(normalise_math(expr)), _value(normalise_math(result))
        if left is not None and right is not None:
            out.append(Equation(f"<<{expr}={result}>>", left, right, close(left, right, rel_tol)))
    prose = normalise_math(_ANNOTATION.sub(" ", text))
    spans = (m for line in prose.splitlines() if "=" in line and len(line) <= _MAX_LINE for m in _spans(line))
    for span in spans:
        parts = span.split("=")
        if not _has_operator(parts[0]):
            continue
        for lhs, rhs in zip(parts, parts[1:], strict=False):
            left, right = _value(lhs), _value(rhs)
            if left is None or right is None:
                continue
            ok = close(left, right, rel_tol)
            if not ok and _has_operator(rhs):
                # "3 + 4 = 7 * 2 = 14": '=' used as "then"; the next step starts from the result.
                lead = re.match(r"\s*\(?\s*(" + _NUMBER + ")", rhs)
                ok = bool(lead) and close(left, float(lead.group(1)), rel_tol)  # type: ignore[union-attr]
            out.append(Equation(f"{lhs.strip()} = {rhs.strip()}", left, right, ok))
    return out


# --------------------------------------------------------------------------- verifier


@dataclass(frozen=True, slots=True)
class ArithmeticReport:
    equations: list[Equation]
    final: float | None
    final_marked: bool
    final_computed: bool  # the final answer is the result of some equation
    truncated: bool

    @property
    def wrong(self) -> list[Equation]:
        return [e for e in self.equations if not e.correct]

    @property
    def fraction_correct(self) -> float:
        return 1.0 if not self.equations else 1 - len(self.wrong) / len(self.equations)


def analyse(text: str, stop_reason: str | None = None, rel_tol: float = 0.01) -> ArithmeticReport:
    equations = find_equations(text, rel_tol)
    final = final_answer(text)
    computed = final is not None and any(close(e.right, final, rel_tol) or close(e.left, final, rel_tol)
                                         for e in equations)
    return ArithmeticReport(equations, final, has_final_marker(text), computed, stop_reason == "max_tokens")


def score_report(r: ArithmeticReport, expect_integer: bool = False) -> float:
    """A quality score in [0, 1]: the share of correct equations, discounted by format problems.

    The discounts are ordered by how strongly each sign predicts a wrong answer: no final
    answer at all or a cut-off answer is worst; a final number no step produced, or a
    non-integer where integers are expected, is a milder warning.
    """
    score = r.fraction_correct
    if r.truncated or r.final is None:
        return 0.0
    if not r.final_marked:
        score *= 0.6
    if r.equations and not r.final_computed:
        score *= 0.8
    if expect_integer and not float(r.final).is_integer():
        score *= 0.7
    if not r.equations:
        score *= 0.9
    return score


class ArithmeticVerifier:
    def __init__(self, threshold: float = 1.0, min_equations: int = 0, rel_tol: float = 0.01,
                 require_final_answer: bool = False, expect_integer: bool = False,
                 name: str = "arithmetic") -> None:
        self.threshold = threshold
        self.min_equations = min_equations
        self.rel_tol = rel_tol
        self.require_final_answer = require_final_answer
        self.expect_integer = expect_integer
        self.name = name

    async def __call__(self, req: Request, resp: Response, ctx: VerifyContext) -> Verdict:
        return await off_loop(self.check, resp.text(), resp.stop_reason, name=self.name)

    def check(self, text: str, stop_reason: str | None = None) -> Verdict:
        """Synchronous core, also used by the offline benchmark."""
        r = analyse(text, stop_reason, self.rel_tol)
        score = score_report(r, self.expect_integer)
        detail = {"equations": len(r.equations), "wrong": [e.text for e in r.wrong[:5]], "final": r.final}
        if r.truncated:
            return Verdict(False, "answer was cut off (max_tokens)", 0.0, self.name, detail)
        if self.require_final_answer and (r.final is None or not r.final_marked):
            return Verdict(False, "no final answer given", score, self.name, detail)
        if len(r.equations) < self.min_equations:
            return Verdict(False, f"found {len(r.equations)} equations, need {self.min_equations}", score,
                           self.name, detail)
        if self.expect_integer and r.final is not None and not float(r.final).is_integer():
            return Verdict(False, f"final answer {r.final:g} is not a whole number", score, self.name, detail)
        if r.fraction_correct < self.threshold:
            first = r.wrong[0]
            return Verdict(False, f"{len(r.wrong)} of {len(r.equations)} equations wrong, e.g. {first.text} "
                                  f"(actually {first.left:g})", score, self.name, detail)
        return Verdict(True, f"{len(r.equations)} equations checked", score, self.name, detail)
