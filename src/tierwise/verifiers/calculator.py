"""A safe calculator for arithmetic found in model answers: parses with `ast`, never `eval`.

Only numbers, + - * / // % ** and parentheses are accepted. Exponents and magnitudes are
bounded so that a hostile answer (`9**9**9**9`) cannot stall the gateway.
"""

from __future__ import annotations

import ast
import math

MAX_EXPRESSION_CHARS = 300
MAX_EXPONENT = 64
MAX_MAGNITUDE = 1e100


class CalcError(ValueError):
    """The text is not a plain arithmetic expression, or evaluating it is undefined or too big."""


_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
}


def evaluate(expression: str) -> float:
    """The value of an arithmetic expression such as `(80000 + 50000) * 1.5`."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalcError("expression too long")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise CalcError(f"not an arithmetic expression: {expression!r}") from e
    try:
        value = _eval(tree.body)
    except RecursionError as e:
        raise CalcError("expression nested too deeply") from e
    return value


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return _bounded(float(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval(node.left), _eval(node.right)
        return _bounded(_apply(_BINOPS[type(node.op)], left, right))
    raise CalcError(f"unsupported syntax: {type(node).__name__}")


def _apply(op: str, a: float, b: float) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op in ("/", "//", "%"):
        if b == 0:
            raise CalcError("division by zero")
        return a / b if op == "/" else (a // b if op == "//" else a % b)
    # Power: bounded before computing, so 10**10**10 never runs.
    if abs(b) > MAX_EXPONENT:
        raise CalcError("exponent too large")
    if a == 0 and b < 0:
        raise CalcError("zero to a negative power")
    if a < 0 and not float(b).is_integer():
        raise CalcError("fractional power of a negative number")
    try:
        return float(a**b)
    except OverflowError as e:
        raise CalcError("result too large") from e


def _bounded(v: float) -> float:
    if math.isnan(v) or math.isinf(v) or abs(v) > MAX_MAGNITUDE:
        raise CalcError("result too large")
    return v
