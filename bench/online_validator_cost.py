"""CPU time of one `OnlineValidator.add` (a judged shadow pair of a `learned` route with `validation`, in the
shadow task, off the request path) on a full window, for pairs of `--keys` gateway keys, while the route is
better than random (`--world good`) or not (`--world random`: the verdict is then re-taken without the largest
keys in turn, where the tree does that). A/B: run it once per tree (a tree whose pairs carry no key gets none).

    PYTHONPATH=src .venv/bin/python bench/online_validator_cost.py --world random
    PYTHONPATH=/tmp/base/src .venv/bin/python bench/online_validator_cost.py --world random
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--keys", type=int, default=4)
    ap.add_argument("--adds", type=int, default=40)
    ap.add_argument("--world", choices=["good", "random"], default="good")
    a = ap.parse_args()
    from tierwise.evaluation.online import JudgedPair, OnlineValidator

    keyed = "key" in {f.name for f in dataclasses.fields(JudgedPair)}
    rng = random.Random(0)

    def pair(i: int) -> JudgedPair:
        s = rng.random()
        hard = s > 0.5 if a.world == "good" else rng.random() > 0.5
        vals = (rng.randrange(20, 400), s, 0.5, 1.0, float(not hard))
        return JudgedPair(*vals, f"key-{i % a.keys}") if keyed else JudgedPair(*vals)

    v = OnlineValidator(window=a.window, min_pairs=50, rounds=a.rounds)
    v.restore([pair(i) for i in range(a.window)])
    t0 = time.process_time()
    for i in range(a.adds):
        est = v.add(pair(i))
    per = (time.process_time() - t0) / a.adds
    print(f"CPU ms per OnlineValidator.add (window {a.window}, {a.rounds} rounds, {a.keys} keys, world {a.world}, "
          f"keyed: {keyed}): {per * 1000:.1f}; verdict {est.verdict}")


if __name__ == "__main__":
    main()
