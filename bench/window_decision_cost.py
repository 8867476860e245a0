"""What the windowed placement (routers/window.py) adds to a `learned` route's decision: the prompt's vector in the
router's training-profile LSA (`profile.lsa.encode_one`) and `PlacementWindow.place` against a full window, per
request, on MMLU prompts (the profile fitted on GSM8K + MT-Bench + the other half of MMLU; the window filled first).

    PYTHONPATH=$PWD/src TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/window_decision_cost.py

`--space tokens` (round 17, `placement: window-tokens`): the prompt read by static token vectors fitted as `transfer`'s
options member fits them (on the training questions' options), 384 numbers, instead of the profile's LSA.
`--judged` (round 18, `placement_judged`): also a full judged window (JUDGED_SIZE requests' vectors and gains), the
route's whole decision-side placement (`RoutePlacement.place`: encode, place, judged shift) and, off the request path,
what a judged pair's verdict costs (`RoutePlacement.verdict`: encode, join the judged window).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tierwise.evaluation.loaders import load_benchmark
from tierwise.routers.shift import TrainingProfile
from tierwise.routers.window import (
    JUDGED_K,
    JUDGED_SIZE,
    JUDGED_WEIGHT,
    SIZE,
    PlacementWindow,
    RoutePlacement,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--size", type=int, default=SIZE)
    ap.add_argument("--space", choices=("lsa", "tokens"), default="lsa")
    ap.add_argument("--judged", action="store_true", help="also time the judged window (placement_judged)")
    args = ap.parse_args()
    mmlu = load_benchmark("mmlu")
    order = np.random.default_rng(0).permutation(len(mmlu))
    train = [mmlu.prompts[i] for i in order[: len(order) // 2]]
    train += list(load_benchmark("gsm8k").prompts) + list(load_benchmark("mt-bench").prompts)
    if args.space == "lsa":
        encode_one = TrainingProfile.fit(train).lsa.encode_one
    else:
        from tierwise.routers.options import verbal_options
        from tierwise.routers.static_tokens import StaticTokenVectors
        from tierwise.routers.window import token_encoder

        encode_one = token_encoder(StaticTokenVectors().fit([o for p in train for o in verbal_options(p)]))
    live = [mmlu.prompts[i] for i in order[len(order) // 2:]]
    w = PlacementWindow(size=args.size)
    rng = np.random.default_rng(1)
    for p in live[: args.size]:  # a full window before timing
        w.place(encode_one(p), float(rng.random()))
    timed = live[args.size: args.size + args.requests]
    v0 = encode_one(live[0])
    rows = [("encode_one", lambda p: encode_one(p)),
            ("place (window full)", lambda p: w.place(v0, 0.5)),
            ("encode_one + place", lambda p: w.place(encode_one(p), 0.5))]
    if args.judged:
        route = RoutePlacement(encode_one, w, PlacementWindow(JUDGED_SIZE, JUDGED_K, JUDGED_WEIGHT))
        for p in live[: JUDGED_SIZE]:
            route.verdict(p, 1.0, float(rng.random() < 0.5))
        rows += [("judged shift (judged window full)", lambda p: route.judged.shift(v0)),  # type: ignore[union-attr]
                 ("RoutePlacement.place (encode, place, judged shift)", lambda p: route.place(p, 0.5)),
                 ("RoutePlacement.verdict (off the request path)", lambda p: route.verdict(p, 1.0, 0.0))]
    for label, fn in rows:
        best = []
        for _ in range(3):
            c0, t0 = time.process_time(), time.perf_counter()
            for p in timed:
                fn(p)
            best.append(((time.process_time() - c0) / len(timed) * 1e3, (time.perf_counter() - t0) / len(timed) * 1e3))
        cpu, wall = min(best)
        print(f"| {label} | {len(timed)} | {cpu:.3f} | {wall:.3f} |")
    print(f"(window {args.size} x {w.vectors.shape[1] if w.vectors is not None else 0}; mean prompt "
          f"{np.mean([len(p) for p in timed]):.0f} chars)")


if __name__ == "__main__":
    main()
