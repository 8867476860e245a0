"""The online validator's cost of keeping judged pairs' prompts (`learned.adapt`): a restore of a full window and a
key flooding judged pairs, in seconds. Run against two source trees to compare (PYTHONPATH=<src>)."""

from __future__ import annotations

import argparse
import time

from tierwise.evaluation.online import JudgedPair, OnlineValidator


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=int, default=100_000)
    ap.add_argument("--kept", type=int, default=2000)
    ap.add_argument("--flood", type=int, default=2000)
    a = ap.parse_args()
    v = OnlineValidator(window=a.window, min_pairs=50, rounds=50, every=10**9, key_share=0.25, prompts_kept=a.kept)
    pairs = [JudgedPair(10, 0.5, 0.5, 1.0, 0.0, f"k{i % 5}", f"p {i}" if i >= a.window - a.kept else "")
             for i in range(a.window)]
    t = time.perf_counter()
    with v._lock:
        for p in pairs:
            v._keep(p)
    restore = time.perf_counter() - t
    t = time.perf_counter()
    with v._lock:
        for i in range(a.flood):
            v._keep(JudgedPair(10, 0.5, 0.5, 1.0, 0.0, "flood", f"f {i}"))
    flood = time.perf_counter() - t
    held = [p for p in v.pairs() if p.prompt]
    print(f"restore of {a.window} pairs: {restore:.3f} s; {a.flood} flood pairs: {flood * 1000 / a.flood:.3f} ms each; "
          f"prompts held {len(held)}, of the flooding key {sum(p.key == 'flood' for p in held)}")


if __name__ == "__main__":
    main()
