"""Per-fold inputs of bench/routers_adapt.py (issue 22, session 25): for each unseen-domain fold, the transferred
router's scores on the fold (fitted on the rest, as bench/routers_transfer_proxies.py and routers_transfer.py do),
the fold's vectors in the route's own neighbour space (the `lsa` space of the `TrainingProfile` a saved router
carries, fitted on the training prompts: what a deployed `learned` route computes per request for shift
detection anyway), and the router's in-domain 5-fold cross-validated scores inside the fold (trained on the fold's
own labelled questions only). Written to DIR/<proxy>--<part>.npz.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/routers_adapt_prep.py --out /tmp/adapt --proxies category
    ... --proxies group,lobo

Proxies: category (leave one of 4 MMLU categories out), group (one of 8 MMLU subject groups), lobo (MMLU ←
GSM8K + MT-Bench, GSM8K ← MMLU + MT-Bench; MT-Bench's 80 questions are too few to spend 50–500 on). MMLU
high-school mathematics is left out of category/group everywhere, as in the earlier sessions.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np
from routers_transfer import build
from routers_transfer_domains import CATEGORIES
from routers_transfer_proxies import GROUPS

from tierwise.evaluation.cv import cross_val_scores
from tierwise.evaluation.dataset import concat, unit_scale
from tierwise.evaluation.loaders import load_benchmark
from tierwise.routers.embedding_cache import EmbeddingCache
from tierwise.routers.shift import TrainingProfile


def folds(proxy: str):
    if proxy in ("category", "group"):
        mmlu = load_benchmark("mmlu").without_subjects(["high_school_mathematics"], name="mmlu")
        rest = [unit_scale(load_benchmark(n)) for n in ("gsm8k", "mt-bench")]
        subj = np.array(mmlu.subjects)
        for part, members in {"category": CATEGORIES, "group": GROUPS}[proxy].items():
            inside = np.isin(subj, members)
            yield part, mmlu.where(inside, part), concat([unit_scale(mmlu.where(~inside, "mmlu")), *rest],
                                                         f"all-but-{part}")
    else:
        raw = {n: load_benchmark(n) for n in ("mmlu", "gsm8k", "mt-bench")}
        for t in ("mmlu", "gsm8k"):
            yield t, raw[t], concat([unit_scale(raw[n]) for n in raw if n != t], f"all-but-{t}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--proxies", default="category")
    ap.add_argument("--router", default="transfer-lsa")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cache = EmbeddingCache(None)
    for proxy in args.proxies.split(","):
        for part, test, train in folds(proxy):
            path = args.out / f"{proxy}--{part}.npz"
            if path.exists():
                continue
            t0 = time.time()
            prior = build(args.router, cache).fit(train).score(test)
            t1 = time.time()
            lsa = TrainingProfile.fit(train.prompts).lsa_raw(test.prompts)
            lsa /= np.maximum(np.linalg.norm(lsa, axis=1, keepdims=True), 1e-12)
            t2 = time.time()
            indomain = cross_val_scores(test, partial(build, args.router, cache), 5, 0)
            np.savez(path, prior=prior, lsa=lsa.astype(np.float32), indomain=indomain,
                     strong=np.asarray(test.strong, float), weak=np.asarray(test.weak, float),
                     chars=np.array([len(p) for p in test.prompts]), groups=np.array(test.groups))
            print(f"{proxy} {part}: n={len(test)} fit+score {t1 - t0:.0f} s, lsa {t2 - t1:.0f} s, "
                  f"in-domain cv {time.time() - t2:.0f} s", flush=True)


if __name__ == "__main__":
    main()
