"""Python bytecodes per `RoutePlacement.place` of a `learned` route with `placement: window-tokens` and the bank term
off (today's default), the window full: a count the machine's load does not move, for comparing two trees (issue 22,
round 23: the option must leave a route without it unchanged).

    PYTHONPATH=<tree>/src HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data .venv/bin/python bench/placement_opcount.py \\
        --router /tmp/transfer23/p16--fold0
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tierwise.evaluation.loaders import load_benchmark
from tierwise.routers import load_router
from tierwise.routers.window import route_placement


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--router", required=True)
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    route = route_placement("window-tokens", load_router(args.router), "main")
    assert route is not None
    prompts = list(load_benchmark("mmlu").prompts)[:1100 + args.requests]
    for p in prompts[:1100]:
        route.place(p, 0.5)
    n = [0]

    def trace(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            n[0] += 1
        return trace

    for p in prompts[1100:]:
        sys.settrace(trace)
        route.place(p, 0.5)
        sys.settrace(None)
    print(f"{n[0] / args.requests:.1f} bytecodes per RoutePlacement.place (bank term off, full window)")


if __name__ == "__main__":
    main()
