"""`when` guards: a small, safe expression language over upstream outputs.

A guard is a Python-like expression such as `classify.label == 'urgent' and len(extract) > 0`.
It is parsed with `ast` and evaluated by walking only the node types allowed here, so an
ensemble file can never run code. Names are the agents the guarded agent depends on, plus
`input` (the run's input); `a.b` reads key `b` of a mapping (or None when absent).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any


class GuardError(ValueError):
    pass


_CMP = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_, ast.IsNot: operator.is_not,
}
_FUNCS: dict[str, Callable[..., Any]] = {"len": len, "lower": lambda s: str(s).lower(), "str": str, "int": int, "float": float, "bool": bool}


def parse_guard(expr: str) -> set[str]:
    """Check a guard's syntax and return the names it reads."""
    names: set[str] = set()
    try:
        _check(ast.parse(expr, mode="eval").body, names)
    except SyntaxError as e:
        raise GuardError(f"not a valid expression: {e.msg}") from None
    except (RecursionError, MemoryError):  # the parser says MemoryError when nesting exceeds its stack
        raise GuardError("the expression is nested too deeply") from None
    return names


def _check(node: ast.AST, names: set[str]) -> None:
    if isinstance(node, ast.Name):
        if node.id not in _FUNCS and node.id not in ("true", "false", "null"):
            names.add(node.id)
        return
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS or node.keywords:
            raise GuardError(f"only these functions may be called: {', '.join(_FUNCS)}")
        for a in node.args:
            _check(a, names)
        return
    allowed = (ast.Constant, ast.Attribute, ast.Subscript, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.List,
               ast.Tuple, ast.And, ast.Or, ast.Not, ast.Load, ast.USub, *(_CMP.keys()))
    if not isinstance(node, allowed):
        raise GuardError(f"{type(node).__name__} is not allowed in a guard")
    for child in ast.iter_child_nodes(node):
        _check(child, names)


def evaluate_guard(expr: str, scope: dict[str, Any]) -> bool:
    try:
        return bool(_eval(ast.parse(expr, mode="eval").body, scope))
    except GuardError:
        raise
    except Exception as e:  # a type mismatch in user data is the guard's problem, said plainly
        raise GuardError(f"could not evaluate {expr!r}: {type(e).__name__}: {e}") from None


def _get(obj: Any, key: Any) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    if isinstance(obj, (list, tuple, str)) and isinstance(key, int):
        return obj[key] if -len(obj) <= key < len(obj) else None
    return None


def _eval(node: ast.AST, scope: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[node.id]
        return scope.get(node.id)
    if isinstance(node, ast.Attribute):
        return _get(_eval(node.value, scope), node.attr)
    if isinstance(node, ast.Subscript):
        return _get(_eval(node.value, scope), _eval(node.slice, scope))
    if isinstance(node, ast.BoolOp):
        vals = (_eval(v, scope) for v in node.values)
        return all(vals) if isinstance(node.op, ast.And) else any(vals)
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, scope)
        return (not v) if isinstance(node.op, ast.Not) else -v
    if isinstance(node, ast.Compare):
        left = _eval(node.left, scope)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, scope)
            if not _CMP[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, scope) for e in node.elts]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _FUNCS[node.func.id](*(_eval(a, scope) for a in node.args))
    raise GuardError(f"{type(node).__name__} is not allowed in a guard")
