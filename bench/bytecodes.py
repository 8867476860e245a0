"""Count the bytecodes this thread runs inside a `with` block: a cost the machine's load does not move
(the per-feature counts of bench/*_count.py and bench/approvals_open_cost.py; path_count.py counts whole
gateway requests in their own processes)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def counted() -> Iterator[list[int]]:
    """`with counted() as n:` ... then `n[0]` is the number of bytecodes run in the block (awaits included)."""
    n = [0]

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            n[0] += 1
        return tracer

    sys.settrace(tracer)
    try:
        yield n
    finally:
        sys.settrace(None)
