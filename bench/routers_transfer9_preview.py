"""Issue 22, round 9 (session 28, transfer9): the preview of test-time adaptation of the transferred router's blend.

Fits `transfer-lsa` (C3) once per fold of a proxy (P3: MMLU subjects in 8 seeded folds; LOBO: leave one benchmark
out) and keeps, per fold, the held-out questions' raw member scores, the router's training rank grids, member
weights, centre/scale and the outcomes (`dump`). `read` then scores variants of the blend from those files without
refitting: C3's (each member ranked among its training out-of-fold scores) and ranks taken among the target batch
itself (the unlabeled questions being routed), whole or mixed with the training ranks.

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer9_preview.py dump --proxy subjfold --out /tmp/transfer9/prev
    nice -n 5 .venv/bin/python bench/routers_transfer9_preview.py dump --proxy lobo --out /tmp/transfer9/prev
    nice -n 5 .venv/bin/python bench/routers_transfer9_preview.py read --out /tmp/transfer9/prev
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from routers_transfer_proxies import paired_leads, subject_folds
from scipy.stats import rankdata

from tierwise.evaluation.dataset import concat, unit_scale
from tierwise.evaluation.loaders import load_benchmark
from tierwise.evaluation.metrics import apgr, routing_curve
from tierwise.routers import make_router, transfer
from tierwise.routers.transfer import _rank


def folds(proxy: str, seed: int) -> list[tuple[str, object, object]]:
    mmlu = load_benchmark("mmlu").without_subjects(["high_school_mathematics"], name="mmlu")
    rest = {n: unit_scale(load_benchmark(n)) for n in ("gsm8k", "mt-bench")}
    out = []
    if proxy == "lobo":
        raw = {"mmlu": load_benchmark("mmlu"), "gsm8k": load_benchmark("gsm8k"), "mt-bench": load_benchmark("mt-bench")}
        unit = {n: unit_scale(d) for n, d in raw.items()}
        for t in raw:
            out.append((t, raw[t], concat([unit[n] for n in raw if n != t], f"all-but-{t}")))
        return out
    subj = np.array(mmlu.subjects)
    if proxy == "p4":  # bench/routers_transfer_proxies.py --proxies p4: 8 seeded subject folds + GSM8K, MT-Bench
        from routers_transfer_proxies import P4_SEED

        seed = P4_SEED
        full = unit_scale(load_benchmark("mmlu"))
        for t in rest:
            out.append((t, load_benchmark(t), concat([full, *(d for n, d in rest.items() if n != t)], f"all-but-{t}")))
    for part, members in subject_folds(list(subj), 8, seed).items():
        inside = np.isin(subj, members)
        out.append((part, mmlu.where(inside, part),
                    concat([unit_scale(mmlu.where(~inside, "mmlu")), *rest.values()], f"all-but-{part}")))
    return out


def dump(args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    todo = folds(args.proxy, args.seed)
    if args.parts:
        todo = [f for f in todo if f[0] in args.parts.split(",")]
    for part, test, train in todo:
        path = args.out / f"{args.proxy}{'' if args.proxy == 'p4' else args.seed}--{part}.npz"
        if path.exists():
            continue
        t0 = time.time()
        seen: dict = {}
        real = transfer.oof_weights

        def spy(oof, data, power, seen=seen, real=real):  # the training rows' leave-subject-out member scores
            seen["oof"] = oof
            return real(oof, data, power)

        transfer.oof_weights = spy
        try:
            r = make_router("transfer-lsa").fit(train)
        finally:
            transfer.oof_weights = real
        counts, vec, shape = r._features(test.prompts)
        s = r._member_scores(r._fit_dict(), counts, vec, shape, test.prompts)
        assert np.allclose(r._combine(s), r.score(test))
        ts, tw = transfer._unit_outcomes(train)
        np.savez(path, s=s, grid=r.rank_grid, weights=r.weights, centre=r.centre, scale=r.scale,
                 strong=np.asarray(test.strong, float), weak=np.asarray(test.weak, float), shape=shape,
                 tr_oof=seen["oof"], tr_src=transfer.sources(train), tr_subj=np.array(train.subjects),
                 tr_strong=ts, tr_weak=tw, tr_shape=transfer._shape_logs(train.prompts, r.shape),
                 shape_coef=r.shape_coef, shape_mu=r.shape_mu, shape_sd=r.shape_sd)
        print(f"<!-- {args.proxy} {part}: {time.time() - t0:.0f} s -->", flush=True)


def blend(f: dict, mode: str) -> np.ndarray:
    s, grid, w = f["s"], f["grid"], f["weights"]
    points = np.linspace(0.0, 1.0, grid.shape[1])
    train = np.stack([_rank(s[:, j], grid[j], points) for j in range(s.shape[1])], axis=1)
    target = np.stack([(rankdata(s[:, j]) - 0.5) / len(s) for j in range(s.shape[1])], axis=1)
    if mode == "C3":
        r = train + 1e-3 * (s - f["centre"]) / f["scale"]
    elif mode == "target":
        r = target
    elif mode.startswith("mix"):
        a = float(mode[3:])
        r = (1 - a) * train + a * target
    return np.asarray(np.average(r, axis=1, weights=w), dtype=float)


class _D:
    def __init__(self, strong: np.ndarray, weak: np.ndarray) -> None:
        self.strong, self.weak = strong, weak


def read(args: argparse.Namespace) -> None:
    modes = ["C3", "target", "mix0.5"]
    for group in sorted({p.name.split("--")[0] for p in args.out.glob("*.npz")}):
        files = sorted(args.out.glob(f"{group}--*.npz"))
        print(f"\n{group}: " + ", ".join(p.stem.split("--")[1] for p in files))
        table = {m: [] for m in modes}
        leads = {m: [] for m in modes}
        for p in files:
            f = dict(np.load(p))
            d = _D(f["strong"], f["weak"])
            base = blend(f, "C3")
            for m in modes:
                sc = blend(f, m)
                table[m].append(apgr(routing_curve(sc, d.strong, d.weak)))
                leads[m].append(paired_leads(sc, base, d, 300))
        for m in modes:
            mean = np.mean(np.stack(leads[m]), axis=0)
            mean = mean[np.isfinite(mean)]
            print(f"{m:8s} " + " ".join(f"{a:.3f}" for a in table[m]) + f" | mean {np.mean(table[m]):.3f} lead "
                  f"{np.mean(table[m]) - np.mean(table['C3']):+.3f} ({np.quantile(mean, 0.025):+.3f}…"
                  f"{np.quantile(mean, 0.975):+.3f}) w={np.round(dict(np.load(files[0]))['weights'], 3)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("dump", "read"))
    ap.add_argument("--proxy", default="subjfold")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--parts", default="", help="only these parts, comma-separated")
    ap.add_argument("--out", type=Path, default=Path("/tmp/transfer9/prev"))
    args = ap.parse_args()
    dump(args) if args.what == "dump" else read(args)


if __name__ == "__main__":
    main()
