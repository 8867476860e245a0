"""Where a reflective route's decision (`LearningLoop.plan` under the route's defaults) spends its CPU, part by part:
the loop of bench/reflective_defaults_cost.py after `--warm` requests of seed 0's stream (the text model fitted),
then each part timed alone over the next `--count` requests' prompts and types (process time, µs per call; each
part is called as the decision calls it, without changing the loop's state).

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python bench/reflective_decision_parts.py [--warm 3000] [--count 500]

Run it with another tree's src/ on PYTHONPATH for the same figures of that tree (`_forecast`, `_type_plan` and
`_serve_explore` are private methods of `LearningLoop`, read where they exist).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import learning_loop as replay  # noqa: E402
from reflective_defaults_cost import loop_of, step  # noqa: E402

from tierwise.routers import features  # noqa: E402


def timed(fn: Callable[..., object], calls: list[tuple]) -> float:
    t = time.process_time_ns()
    for c in calls:
        fn(*c)
    return (time.process_time_ns() - t) / 1e3 / len(calls)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warm", type=int, default=3000)
    ap.add_argument("--count", type=int, default=500)
    args = ap.parse_args()
    data, types, _ = replay.load_stream(0)
    mt = [g.startswith("mt-bench") for g in data.groups]
    loop = loop_of({})
    for i in range(args.warm):
        step(loop, data, types, mt, i)
    rm = loop.request_model
    assert rm is not None and rm.ready
    idx = range(args.warm, args.warm + args.count)
    texts = [(data.prompts[i], types[i]) for i in idx]

    def hashes(text: str) -> object:
        features.token_hashes.cache_clear()  # (a request hashes its prompt once)
        return features.token_hashes(text[: rm.settings.max_chars])

    def feats(text: str, t: str) -> object:
        features.token_hashes.cache_clear()
        return rm.features(text, t)

    f = [rm.features(x, t) for x, t in texts]
    parts = {
        "token hashes of the prompt": timed(hashes, [(x,) for x, _ in texts]),
        "the prompt's features (hashes, bucket counts)": timed(feats, texts),
        "text model estimate": timed(rm.estimate, [(x,) for x in f]),
        "type plan (value of information)": timed(loop._type_plan, [(types[i], f"x{i}", False) for i in idx]),
        "one pooled forecast": timed(loop._forecast, [(types[i],) for i in idx]),
        "served-exploration check": timed(loop._serve_explore, [(types[i], 0.3) for i in idx]),
    }
    for name, us in parts.items():
        print(f"{name}: {us:.1f} µs")


if __name__ == "__main__":
    main()
