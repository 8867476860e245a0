"""Exploratory (issue 22, session 25; P1 only, after the pre-registered run of bench/routers_adapt.py): refit C3
`transfer-lsa` on its training data plus the N judged pairs as a source of their own, score the rest of the fold,
beside the unadapted prior and A (`tfidf:1:300`) on the same orders. Reads the prep files of
bench/routers_adapt_prep.py.

    PYTHONPATH=src:bench OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/routers_adapt_refit.py stem,"social sciences" 500 3
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import numpy as np
from routers_adapt import adapt
from routers_adapt_prep import folds
from routers_transfer import build

from tierwise.evaluation.dataset import concat, unit_scale
from tierwise.evaluation.metrics import apgr, routing_curve
from tierwise.routers.embedding_cache import EmbeddingCache


def main() -> None:
    parts, n, orders = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
    cache = EmbeddingCache(None)
    for part, test, train in folds("category"):
        if part not in parts:
            continue
        f = dict(np.load(f"/tmp/adapt/category--{part}.npz"))
        f["prompts"] = list(test.prompts)
        rng = np.random.default_rng(7)
        for o in range(orders):
            order = rng.permutation(len(test))
            live, rest = order[:n], order[n:]
            lv = test.take(live)
            lv = replace(lv, groups=[f"live:{g}" for g in lv.groups], subjects=["live"] * len(lv))
            t0 = time.time()
            refit = build("transfer-lsa", cache).fit(concat([train, unit_scale(lv)], "train+live"))
            s = refit.score(test.take(rest))
            st, wk = f["strong"][rest], f["weak"][rest]
            a = {m: apgr(routing_curve(adapt(m, live, rest, f), st, wk)) for m in ("prior", "tfidf:1:300")}
            print(f"{part} N={n} order {o}: prior {a['prior']:.3f}  A {a['tfidf:1:300']:.3f}  "
                  f"refit {apgr(routing_curve(s, st, wk)):.3f}  ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
