"""Issue 22, round 15 (session 33, transfer15): placing whole unseen subjects — the blend's score pulled towards its
mean over a cluster of the traffic.

Round 15's attribution (`routers_transfer15_attr.py`, spent P8/P9 against the in-domain 5-fold CV on the same
subjects) says the held-out gap is the placement of whole subjects against each other, not the ranking inside one:
the default's within-subject order is as good as in-domain's, its subjects' placement is not. A question's own score
places its subject with a question's noise; the mean over many questions of one subject places it with less. The
traffic's subjects are unknown, so clusters of the traffic stand for them: the scored questions' TF-IDF (fitted on
the traffic itself, sublinear), 64 LSA dimensions, k-means with k = round(n / CLUSTER_SIZE); candidate `C` scores

    blend + WEIGHT * (mean of blend over the question's cluster - mean of blend over all)

where `blend` is the default `transfer` (options member included; round 14's `A`). `C` changes no fit: it reads
round 14's dumps (`routers_transfer14.py`'s instrumented fit, columns and candidates) and the parts' prompts. The
clustering and the placement are the library's (`tierwise.routers.placement`, where they moved when C passed its
registered rule; CLUSTER_SIZE 200, WEIGHT 1.0, 64 dimensions: the values registered).

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer15.py dump --proxy p10 --out /tmp/transfer15   # fresh
    nice -n 5 .venv/bin/python bench/routers_transfer15.py read --proxy p8 --out /tmp/transfer15    # spent
    nice -n 5 .venv/bin/python bench/routers_transfer15.py registered --out /tmp/transfer15

Proxies: `lobo`, `p6`…`p9` (spent), `p10` (this round's fresh split, seed P10_SEED), `indomain`.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import routers_transfer11 as r11
import routers_transfer13 as r13
import routers_transfer14 as r14
from routers_transfer10 import proxy_parts
from routers_transfer12 import P6_SEED, P7_SEED

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers.placement import CLUSTER_SIZE, placed
from tierwise.routers.placement import traffic_clusters as clusters

P10_SEED = 20341206  # a seed no split used: P3 2026, P4 20281206, …, P8 20321206, P9 20331206
BASE = "A"  # round 14's name of the default (`strong="discount"`)
CANDIDATES = {**r14.CANDIDATES, "C": r14.CANDIDATES[BASE]}
REGISTERED = "C"
_scores13 = r13.scores


def parts(proxy: str) -> list[tuple[str, OutcomeDataset, OutcomeDataset]]:
    if proxy == "p10":
        return proxy_parts(proxy, {"p10": P10_SEED})[0]
    if proxy in ("p6", "p7"):
        return proxy_parts(proxy, {"p6": P6_SEED, "p7": P7_SEED})[0]
    return r14.parts(proxy)


def scores(f: dict[str, np.ndarray], c: str, with_options: bool = True,
           candidates: dict[str, tuple[str, ...]] = CANDIDATES) -> np.ndarray:
    """Round 13/14's blend for their candidates; `C` (and `C:<size>:<lambda>` in a preview) the default placed."""
    if not c.startswith("C"):
        return _scores13(f, c, with_options, r14.CANDIDATES)
    s = _scores13(f, BASE, with_options, r14.CANDIDATES)
    if c == "C":
        return placed(s, f["cluster"])
    _, size, lam = c.split(":")
    return placed(s, f[f"cluster{size}"], float(lam))


def load(args: argparse.Namespace, proxy: str, sizes: tuple[int, ...] = (CLUSTER_SIZE,)) -> dict[str, Any]:
    """Round 11's `load` with each part's clusters (cached beside the dumps as .npy, computed from the parts'
    prompts); `w_C…` = the default's weights."""
    files = r11.load(args, proxy)
    if not files:
        return files
    tests = {p: t for p, t, _ in parts(proxy) if p in files}
    for p, f in files.items():
        for c in ("C", *(c for c in args.candidates.split(",") if c.startswith("C:"))):
            f[f"w_{c}"] = f[f"w_{BASE}"]
        for size in sizes:
            path = args.out / f"{proxy}--{p}--clusters{size}.npy"
            if not path.exists():
                np.save(path, clusters(list(tests[p].prompts), size))
            cl = np.load(path)
            assert len(cl) == len(f["strong"])
            f[f"cluster{size}"] = cl
        f["cluster"] = f[f"cluster{CLUSTER_SIZE}"]
    return files


def main() -> None:
    ap = r13.arguments(15, 10, "A,C")
    ap.add_argument("--sizes", default=str(CLUSTER_SIZE), help="cluster sizes to read (preview: C:<size>:<lambda>)")
    args = ap.parse_args()
    if args.what == "dump":
        r13.dump(args, r14.Instrumented14, r14.COLUMNS, r14.CANDIDATES, parts)
        return
    sizes = tuple(int(x) for x in args.sizes.split(","))
    r13.load = lambda a, proxy: load(a, proxy, sizes)  # type: ignore[assignment]  # clusters beside the dumps
    r13.scores = scores  # type: ignore[assignment]  # C beside round 13/14's candidates
    r13.read_or_registered(args, CANDIDATES, REGISTERED, "p10", BASE, ("C:",))


if __name__ == "__main__":
    main()
