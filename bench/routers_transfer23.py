"""Issue 22, round 23 (session 37, transfer23): round 22's training-bank neighbour gain as the library's option,
registered on a fresh split P16 and read through the library code path (not a bench re-implementation).

`fit --proxy p16` fits the library's `transfer-lsa-options` (round 22's D, now carrying its training bank:
routers/bank.py) on each part's training side and saves it with `save_router` (prints timings only). `registered`
loads each saved router with `load_router` and scores its part with `tierwise eval`'s `evaluate` and
`placement="window-tokens"`, `bank_weight` 0 (T, today's default) and 0.25 (KTW, the option): the same
`RoutePlacement` a gateway route runs. In-domain and LOBO (deterministic, not fresh) are read from round 22's dumps
(/tmp/transfer22: D's scores, the prompts' token vectors, the bank's vectors and gains) through the same library
code: `NeighbourBank.fit` and `placement.place` with `bank_weight`.

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer23.py fit --proxy p16      # several processes share the parts
    nice -n 5 .venv/bin/python bench/routers_transfer23.py registered --ci 300
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from routers_transfer10 import proxy_parts
from routers_transfer_proxies import indomain_rule, paired_rows

from tierwise.evaluation.metrics import apgr, routing_curve

P16_SEED = 20401206  # the fresh split (P1-P15 spent)
WEIGHT = 0.25  # the registered bank weight (`placement_bank` / `--bank-weight`)
MIN_LEAD = 0.003
SPEC = "transfer-lsa-options"  # round 22's D: lsa base + options member (the library's, now with its bank)


def fit(args: argparse.Namespace) -> None:
    from tierwise.routers import make_router
    from tierwise.routers.base import save_router

    args.out.mkdir(parents=True, exist_ok=True)
    for p, _test, train in proxy_parts("p16", {"p16": P16_SEED})[0]:
        path = args.out / f"p16--{p}"
        claim = path.with_suffix(".claim")
        if path.with_suffix(".json").exists():
            continue
        try:
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            continue
        t0 = time.time()
        save_router(make_router(SPEC).fit(train), path)
        claim.unlink()
        print(f"<!-- p16 {p}: {time.time() - t0:.0f} s -->", flush=True)


def library_scores(path: Path, test: Any) -> dict[str, np.ndarray]:
    from tierwise.evaluation.replay import evaluate

    out = {"strong": np.asarray(test.strong, float), "weak": np.asarray(test.weak, float)}
    for name, w in (("T", 0.0), ("KTW", WEIGHT)):
        out[name] = evaluate(test, [str(path) + ".json"], baselines=False, placement="window-tokens",
                             bank_weight=w)[0].scores
    return out


def from_dump(f: dict[str, Any]) -> dict[str, np.ndarray]:
    """T and KTW of one round-22 dump through the library: its bank fitted by `NeighbourBank.fit`, placed by
    `placement.place` (as `tierwise eval` places a saved router's scores)."""
    from tierwise.routers.bank import NeighbourBank
    from tierwise.routers.placement import place

    bank = NeighbourBank.fit(np.asarray(f["bank_tv"], np.float32), np.asarray(f["bank_gain"], float))
    s, tokens = np.asarray(f["s_D"], float), np.asarray(f["tokens"], np.float32)
    idx = list(range(len(s)))
    out = {"strong": f["strong"], "weak": f["weak"]}
    for name, w in (("T", 0.0), ("KTW", WEIGHT)):
        out[name] = place(s, idx, "window-tokens", lambda _: tokens, 0, bank=bank if w else None, bank_weight=w)
    return out


def registered(args: argparse.Namespace) -> None:
    import routers_transfer22 as r22

    def pick(f: dict[str, Any], c: str) -> np.ndarray:
        return np.asarray(f[c], float)

    files = {}
    for p, test, _train in proxy_parts("p16", {"p16": P16_SEED})[0]:
        path = args.out / f"p16--{p}"
        if path.with_suffix(".json").exists():
            files[p] = library_scores(path, test)
    print("| P16 fold | n | T (default) | KTW | KTW − T, paired (95%) |\n|---|---|---|---|---|")
    leads, points, verdicts = paired_rows(files, "T", "KTW", pick, args.ci, "3. veto: ")
    if files:
        m = np.mean(np.stack(leads), axis=0)
        m = m[np.isfinite(m)]
        point, lo, hi = float(np.mean(points)), float(np.quantile(m, 0.025)), float(np.quantile(m, 0.975))
        print(f"\nP16 mean paired lead of KTW over T ({len(files)} folds): {point:+.3f} ({lo:+.3f}…{hi:+.3f}); "
              f"T {np.mean([apgr(routing_curve(f['T'], f['strong'], f['weak'])) for f in files.values()]):.3f}, "
              f"KTW {np.mean([apgr(routing_curve(f['KTW'], f['strong'], f['weak'])) for f in files.values()]):.3f}")
        verdicts.insert(0, (f"1. P16: {len(files)} of 8 folds, mean lead >= +{MIN_LEAD} and its 95% lower end > 0",
                            len(files) == 8 and point >= MIN_LEAD and lo > 0))
    else:
        verdicts.insert(0, ("1. P16: 8 folds fitted", False))
    ind = {k: from_dump(f) for k, f in r22.load(args.r22, "indomain").items()}
    verdicts += indomain_rule(ind, "T", "KTW", pick)
    lobo = {k: from_dump(f) for k, f in r22.load(args.r22, "lobo").items()}
    for p in ("gsm8k", "mmlu", "mt-bench"):
        if p not in lobo:
            verdicts.append((f"4. LOBO {p}: dumped", False))
            continue
        f = lobo[p]
        a = float(apgr(routing_curve(f["KTW"], f["strong"], f["weak"])))
        t = float(apgr(routing_curve(f["T"], f["strong"], f["weak"])))
        verdicts.append((f"4. LOBO {p}: KTW {a:.3f} >= 0.58 (T {t:.3f})", a >= 0.58))
    for text, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    print("KTW passes its registered rule" if all(ok for _, ok in verdicts) else
          "KTW does not pass its registered rule (or the round is partial)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("fit", "registered"))
    ap.add_argument("--proxy", default="p16", choices=("p16",))
    ap.add_argument("--ci", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("/tmp/transfer23"))
    ap.add_argument("--r22", type=Path, default=Path("/tmp/transfer22"))
    args = ap.parse_args()
    {"fit": fit, "registered": registered}[args.what](args)


if __name__ == "__main__":
    main()
