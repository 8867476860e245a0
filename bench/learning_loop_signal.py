"""A within-type signal for the learning-loop replay from a router that never saw the type (issue 21, round 38).

The replay's task types are dealt into folds; for each fold a router (`--router`, default `transfer-lsa`: issue 22's router meant to be
trained on public data and used on other traffic) is trained on the other folds' questions and scores the
fold's own: the score a router trained elsewhere gives traffic it has not seen, which is what a deployment's
saved router gives its users' requests. The scores are written in the order of `load_stream`'s unpermuted data
(`bench/learning_loop.py --within-signal FILE` reads them).

    PYTHONPATH=src HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python \
        bench/learning_loop_signal.py --folds 4 --out /tmp/loop38/signal_tlsa4.npy [--auc]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from learning_loop import load_stream

from tierwise.routers import make_router


def held_out_scores(router: str, folds: int) -> np.ndarray:
    """Each type's questions scored by a router trained on the types of the other folds (types dealt to `folds`
    folds in sorted order, round robin; 0: one fold per type)."""
    data, types, order = load_stream(0)
    out = np.zeros(len(data))
    names = sorted(set(types))
    fold_of = {t: (i % folds if folds else i) for i, t in enumerate(names)}
    fold = np.array([fold_of[t] for t in types])
    for f in sorted(set(fold_of.values())):
        t0 = time.time()
        rest, own = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        fitted = make_router(router).fit(data.take(rest))
        out[own] = fitted.score(data.take(own))
        print(f"fold {f} ({', '.join(t for t in names if fold_of[t] == f)}): {len(own)} scored by a router trained "
              f"on {len(rest)} ({time.time() - t0:.0f} s)", flush=True)
    unpermuted = np.zeros(len(data))
    unpermuted[order] = out  # data[i] is the unpermuted question order[i]
    return unpermuted


# `bench/learning_loop.py --within-signal FILE`: the scores by prompt, read on first use
_BY_PROMPT: dict[str, dict[str, float]] = {}


def signal_of(path: str, prompts: list[str]) -> np.ndarray:
    """The file's scores for these prompts (the replay's permuted order)."""
    if path not in _BY_PROMPT:
        data, _, order = load_stream(0)
        _BY_PROMPT[path] = dict(zip(data.prompts, np.load(path)[order].tolist(), strict=True))
    return np.array([_BY_PROMPT[path][p] for p in prompts])


def auc_table(path: str) -> None:
    """Per type (100 questions or more): how well the prompt's length and the file's score rank the replay's verdict
    (accepted), as AUC of the signal's negative (longer / higher-scored prompts harder), and the size-weighted mean
    of |AUC - 0.5| + 0.5 over those types."""
    from learning_loop import accepted
    from sklearn.metrics import roc_auc_score

    data, types, order = load_stream(0)
    tt = np.array(types)
    mt = [g.startswith("mt-bench") for g in data.groups]
    y = np.array([accepted(a, b, m) for a, b, m in zip(data.strong, data.weak, mt, strict=True)])
    length, score = np.log1p([len(p) for p in data.prompts]), np.load(path)[order]
    print("| type | questions | acceptance | AUC length | AUC score |\n|---|---|---|---|---|")
    size, far = 0, np.zeros(2)
    for t in sorted(set(types)):
        own = tt == t
        if own.sum() < 100:
            continue
        aucs = np.array([roc_auc_score(y[own], -x[own]) for x in (length, score)])
        print(f"| {t} | {own.sum()} | {y[own].mean():.3f} | {aucs[0]:.3f} | {aucs[1]:.3f} |")
        size, far = size + own.sum(), far + own.sum() * np.abs(aucs - 0.5)
    print(f"size-weighted |AUC - 0.5| + 0.5: length {far[0] / size + 0.5:.3f}, score {far[1] / size + 0.5:.3f}")


def signal_cost(router: str, n_train: int) -> None:
    """CPU time of the route's signal per request (`RequestSignal.of`): the length, and a saved `router` trained on the
    first `n_train` questions of seed 0's stream, over 500 other prompts (min of 3 passes)."""
    import tempfile

    from tierwise.canonical import Message, Request, TextBlock
    from tierwise.learning.within_signal import RequestSignal
    from tierwise.routers import load_router, save_router

    data, _, _ = load_stream(0)
    with tempfile.TemporaryDirectory() as tmp:
        saved = load_router(save_router(make_router(router).fit(data.take(np.arange(n_train))), f"{tmp}/router"))
    reqs = [Request(model="m", messages=[Message("user", [TextBlock(p)])]) for p in data.prompts[5000:5500]]
    for name, sig in (("length", RequestSignal()), (router, RequestSignal(saved))):
        passes = []
        for _ in range(3):
            t = time.process_time_ns()
            for q in reqs:
                sig.of(q)
            passes.append((time.process_time_ns() - t) / len(reqs) / 1000)
        print(f"{name}: {min(passes):.1f} µs per request (CPU, min of 3 passes over 500 prompts)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--router", default="transfer-lsa")
    ap.add_argument("--folds", type=int, default=4, help="folds of whole task types (0: one per type)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--auc", action="store_true", help="print the per-type AUC table of an existing --out file")
    ap.add_argument("--cost", type=int, default=0, help="time the route's signal with --router trained on this many")
    args = ap.parse_args()
    if args.cost:
        signal_cost(args.router, args.cost)
    elif args.auc:
        auc_table(args.out or ap.error("--out is needed"))
    else:
        np.save(args.out or ap.error("--out is needed"), held_out_scores(args.router, args.folds))


if __name__ == "__main__":
    main()
