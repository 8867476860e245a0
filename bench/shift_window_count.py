"""Bytecodes of one `ShiftWindow.add` (a `learned` route with `shift`: one call per request), for traffic of
`--keys` gateway keys, a share `--far` of it far from the training prompts. A count, so the machine's load
does not move it. A/B: run it once per tree (a tree whose `add` takes no key is called without one).

    PYTHONPATH=src .venv/bin/python bench/shift_window_count.py
    PYTHONPATH=/tmp/base/src .venv/bin/python bench/shift_window_count.py
"""

from __future__ import annotations

import argparse
import inspect
import random

from bytecodes import counted  # bench/bytecodes.py (the script's folder is on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--keys", type=int, default=4)
    ap.add_argument("--far", type=float, default=0.05, help="share of far requests (in-distribution: ~0.05)")
    a = ap.parse_args()
    from tierwise.routers.shift import ShiftWindow

    keyed = "key" in inspect.signature(ShiftWindow.add).parameters
    w = ShiftWindow()
    rng = random.Random(0)
    traffic = [(0.99 if rng.random() < a.far else rng.random() * 0.9, f"key-{rng.randrange(a.keys)}")
               for _ in range(a.requests + 400)]
    for p, k in traffic[:400]:  # the window full first
        w.add(p, k) if keyed else w.add(p)
    with counted() as n:
        for p, k in traffic[400:]:
            w.add(p, k) if keyed else w.add(p)
    ops = n[0]
    print(f"bytecodes per ShiftWindow.add ({a.keys} keys, {a.far:.0%} far, key-aware: {keyed}): "
          f"{ops / a.requests:,.1f}")


if __name__ == "__main__":
    main()
