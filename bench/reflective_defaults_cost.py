"""What a reflective route's per-request decision (`LearningLoop.plan`) costs under its defaults, before and after
round 14 changed them and after round 16 added `value.watch: decide` (bench/RESULTS.md, "Issue 21, session 22"): the loop built from `ReflectiveConfig` as a route
builds it, fed the replay's stream (seed 0, the recorded verdicts for the requests it judges, costs fixed at the
replay's prices), and counted on the requests after `--warm` (the text model fitted by then).

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python bench/reflective_defaults_cost.py [--warm 3000] [--count 500]

Prints, per defaults: bytecodes per decision (bench/bytecodes.py: a count the machine's load does not move; the
text model's numpy work is C and not in it) over the `--count` requests after `--warm`, and process-time µs per
decision over each of the next `--rounds` runs of `--count` requests (the loop keeps learning, so a pass cannot be
repeated on the same state; the median of the passes is printed).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import learning_loop as replay  # noqa: E402
from bytecodes import counted  # noqa: E402

from tierwise.learning.loop import LearningLoop, LoopSettings  # noqa: E402
from tierwise.policies.reflective import ReflectiveConfig  # noqa: E402

BEFORE = {"sampling": "rules", "value": {"explore": "shadow"}, "within": {"enabled": False},
          "request_model": {"kind": "none", "weight": 0.5}, "boundary": {"move_back": "mean"}}
ROUND_14 = {"value": {"watch": "confirm"}}  # the route's defaults of rounds 14-15


def loop_of(keys: dict) -> LearningLoop:
    costs = {"saving_usd": replay.PF - replay.PW, "judge_usd": replay.JUDGE, "shadow_usd": replay.SHADOW}
    cfg = ReflectiveConfig.model_validate({"local": "l", "frontier": "f", "quality_target": 0.75,
                                           **keys, "value": {**keys.get("value", {}), **costs}})
    bset = cfg.boundary.model_copy(update={"quality_target": cfg.quality_target})
    return LearningLoop("r", LoopSettings(sampling=cfg.sampling, schedule=cfg.schedule, boundary=bset, value=cfg.value,
                                          within=cfg.within, request_model=cfg.request_model, order=cfg.order))


def step(loop: LearningLoop, data, types: list[str], mt: list[bool], i: int, codes: list[int] | None = None,
         us: list[float] | None = None) -> None:
    """Decide request i (counting its bytecodes into `codes` or its process time into `us`), then give the verdict
    of a request the loop judges."""
    signal = math.log1p(len(data.prompts[i])) if loop.settings.within.enabled else None
    kw = {"signal": signal, "text": data.prompts[i]}
    if codes is not None:
        with counted() as n:
            plan = loop.plan(types[i], f"req-{i}", **kw)
        codes.append(n[0])
    elif us is not None:
        t = time.process_time_ns()
        plan = loop.plan(types[i], f"req-{i}", **kw)
        us.append((time.process_time_ns() - t) / 1e3)
    else:
        plan = loop.plan(types[i], f"req-{i}", **kw)
    if plan.judge:
        loop.verdict(types[i], replay.accepted(data.strong[i], data.weak[i], mt[i]), request_id=f"req-{i}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warm", type=int, default=3000)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    data, types, _ = replay.load_stream(0)
    mt = [g.startswith("mt-bench") for g in data.groups]
    for name, keys in (("before round 14", BEFORE), ("round 14 defaults", ROUND_14), ("round 16 defaults", {})):
        loop = loop_of(keys)
        codes: list[int] = []
        for i in range(args.warm):
            step(loop, data, types, mt, i)
        i = args.warm
        for _ in range(args.count):
            step(loop, data, types, mt, i, codes=codes)
            i += 1
        per_round = []
        for _ in range(args.rounds):
            us: list[float] = []
            for _ in range(args.count):
                step(loop, data, types, mt, i, us=us)
                i += 1
            per_round.append(statistics.mean(us))
        rm = loop.request_model
        print(f"{name}: {statistics.mean(codes):,.1f} bytecodes per decision, "
              f"{statistics.median(per_round):.1f} µs per decision (process time, median of {args.rounds} passes of "
              f"{args.count}; passes {', '.join(f'{x:.1f}' for x in per_round)})"
              + (f"; text model rows {len(rm.rows)}" if rm is not None else ""))


if __name__ == "__main__":
    main()
