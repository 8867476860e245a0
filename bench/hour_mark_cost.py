"""What the one-hour cache mark search (`pricing.asks_hour_cache`) costs an admission with budgets: a forwarded
Anthropic body with no mark, so the whole body is read.

    PYTHONPATH=src .venv/bin/python bench/hour_mark_cost.py [--bytecodes]

`--bytecodes`: the Python bytecodes one call runs instead (`sys.settrace` opcode events; steady where the machine's
load makes wall time noisy).
"""

from __future__ import annotations

import sys
import timeit
from types import SimpleNamespace

from bytecodes import counted  # bench/bytecodes.py (the script's folder is on sys.path)

from tierwise.pricing import asks_hour_cache


def bytecodes(req: SimpleNamespace) -> int:
    with counted() as n:
        asks_hour_cache(req)
    return n[0]


def main() -> None:
    n = 2000
    for turns in (20, 500):
        turn = {"role": "user", "content": [{"type": "text", "text": "x"},
                                            {"type": "tool_result", "tool_use_id": "a", "content": "y"}]}
        body = {"system": [{"type": "text", "text": "s"}] * 3, "tools": [{"name": "t", "input_schema": {}}] * 20,
                "messages": [turn] * turns}
        req = SimpleNamespace(source_body=body)
        if "--bytecodes" in sys.argv:
            print(f"{turns} turns x 2 blocks, 3 system, 20 tools, no 1h mark: {bytecodes(req):,} bytecodes")
            continue
        best = min(timeit.repeat(lambda r=req: asks_hour_cache(r), number=n, repeat=5)) / n * 1e6
        print(f"{turns} turns x 2 blocks, 3 system, 20 tools, no 1h mark: {best:.1f} us (best of 5 x {n})")


if __name__ == "__main__":
    main()
