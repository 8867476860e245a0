"""Python bytecodes of one `pricing.cache_mark` call at this tree and at another tree's pricing.py, on
bench/hour_mark_cost.py's body (no mark: the whole body read). Session 30, review30c: the other was main before it
(`git show 4854830a:src/tierwise/pricing.py > /tmp/r30c/pricing_main.py`).

    PYTHONPATH=src .venv/bin/python bench/cache_mark_opcount.py /tmp/r30c/pricing_main.py
"""

from __future__ import annotations

import importlib.util
import sys
from types import SimpleNamespace
from typing import Any

from bytecodes import counted  # bench/bytecodes.py (the script's folder is on sys.path)


def load(path: str, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def count(f: Any, arg: Any) -> int:
    with counted() as n:
        f(arg)
    return n[0]


def main() -> None:
    mine, other = load("src/tierwise/pricing.py", "p_mine"), load(sys.argv[1], "p_other")
    for turns in (20, 500):
        turn = {"role": "user", "content": [{"type": "text", "text": "x"},
                                            {"type": "tool_result", "tool_use_id": "a", "content": "y"}]}
        body = {"system": [{"type": "text", "text": "s"}] * 3, "tools": [{"name": "t", "input_schema": {}}] * 20,
                "messages": [turn] * turns}
        r = SimpleNamespace(source_body=body)
        print(f"{turns} turns: this tree {count(mine.cache_mark, r):,}, the other {count(other.cache_mark, r):,}")


if __name__ == "__main__":
    main()
