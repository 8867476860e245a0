"""CPU per decision of round 22's training-bank look-up (bench/transfer22_candidates.py `bank_labels`), one request
at a time as a route would run it: the similarity-weighted gain of the 50 nearest training questions by static token
vectors, exactly over all rows (384 dims) and over the bank's top principal axes (the query projected first).

    PYTHONPATH=$PWD/src:$PWD/bench OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/bank_lookup_cost.py \\
        --dump /tmp/transfer22/p11--fold0.npz --bank /tmp/transfer22/bank--p11--fold0.npz
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def per_decision(bank: np.ndarray, lab: np.ndarray, queries: np.ndarray, proj: np.ndarray | None, passes: int) -> float:
    best = float("inf")
    for _ in range(passes):
        t0 = time.process_time()
        for x in queries:
            if proj is not None:
                x = x @ proj
                x = x / max(float(np.linalg.norm(x)), 1e-12)
            sims = bank @ x
            top = np.argpartition(-sims, 49)[:50]
            ss = sims[top]
            w = np.exp((ss - ss.max()) / 0.05)
            float(w @ lab[top] / w.sum())
        best = min(best, (time.process_time() - t0) / len(queries) * 1000)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True)
    ap.add_argument("--bank", required=True)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args()
    b = np.load(args.bank)
    bank = b["tv"].astype(np.float32)
    lab = np.asarray(b["gain"], dtype=float)
    q = np.load(args.dump)["tokens"][: args.requests].astype(np.float32)
    print(f"bank {bank.shape[0]} x {bank.shape[1]}, {len(q)} requests, min of {args.passes} passes")
    print(f"| look-up | CPU ms per decision |\n|---|---|\n| exact, 384 dims | {per_decision(bank, lab, q, None, args.passes):.3f} |")
    _, _, vt = np.linalg.svd(bank - bank.mean(axis=0), full_matrices=False)
    for dims in (64, 32):
        proj = np.ascontiguousarray(vt[:dims].T, dtype=np.float32)
        small = bank @ proj
        small /= np.maximum(np.linalg.norm(small, axis=1, keepdims=True), 1e-12)
        print(f"| top {dims} principal axes | {per_decision(np.ascontiguousarray(small), lab, q, proj, args.passes):.3f} |")


if __name__ == "__main__":
    main()
