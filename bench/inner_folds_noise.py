"""The stack router's inner cross-validation on noise written twice: each member's inner APGR, the blend and the
weights (session 25, leftovers25). Noise has nothing to learn: about 0.5 when the inner folds keep a repeated
prompt together, more when its two copies are fitted in one fold and scored in another.

    PYTHONPATH=src .venv/bin/python bench/inner_folds_noise.py [--seeds 3 4 5] [--n 150]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.routers.test_inner_folds import noise_twice  # noqa: E402
from tierwise.routers import make_router  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    ap.add_argument("--n", type=int, default=150, help="distinct prompts (each written twice)")
    a = ap.parse_args()
    print("| seed | " + " | ".join(["tfidf-ridge", "tfidf-logit", "knn", "trees"]) + " | blend | weights |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for seed in a.seeds:
        r = make_router("stack-lsa").fit(noise_twice(a.n, seed))
        cells = " | ".join(f"{r.inner_apgr[m]:.3f}" for m in ("tfidf-ridge", "tfidf-logit", "knn", "trees"))
        print(f"| {seed} | {cells} | {r.blend:g} | {np.round(r.weights, 2).tolist()} |")


if __name__ == "__main__":
    main()
