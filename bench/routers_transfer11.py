"""Issue 22, round 11 (session 30, transfer11): member weights of `transfer` fitted for transfer, not in-domain.

Round 10's leftover: `transfer-lsa` (C3) weighs each member's rank by its lead over random on leave-*subject*-out
scores inside the training data, where MMLU's 14,000 one-token labels outvote everything (MT-Bench's 72 do not
vote at all). The weights so reward what is peculiar to MMLU: trained on MMLU + GSM8K the `tfidf-logit-wf` member
gets 0.027 of the weight and alone reaches 0.812 on MT-Bench. Candidates that change *only the member weights*
(members, rank grids and the options member are C3's / the default's, from one fit per part):

- `EQ`     every member the same weight;
- `SH`     C3's weights (normalised) shrunk half-way to equal;
- `LSO`    leave-one-source-out stacking: each training source's rows scored by members fitted on the *other*
           sources only; a member weighs its mean lead over random across sources (each source one vote, since a
           benchmark is the unit of transfer), none below 0; with fewer than two sources, C3's weights;
- `LSOW`   as LSO, a member weighs its *worst* source's lead (none below 0);
- `LSOS`   as LSO, the weights the simplex point (steps of 0.05) with the best mean-over-sources APGR of the
           within-source rank blend (a fitted combiner).

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer11.py dump --proxy lobo --out /tmp/transfer11
    nice -n 5 .venv/bin/python bench/routers_transfer11.py read --proxy lobo --out /tmp/transfer11

Proxies: `lobo` (train on two benchmarks, score the third), `p3` (transfer8's split, seed 2026), `p6` (this round's
fresh split, seed P6_SEED: 8 folds of MMLU subjects, high-school mathematics out, trained on the rest of MMLU +
GSM8K + MT-Bench), `indomain` (5-fold CV by question on MMLU and on GSM8K, as bench/routers_transfer.py).
`dump` prints only timings; `read` prints the figures.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from routers_transfer10 import proxy_parts, unwritten
from routers_transfer_proxies import apgr_table, indomain_rule, paired_rows

from tierwise.evaluation.cv import group_folds
from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.evaluation.loaders import load_benchmark
from tierwise.evaluation.metrics import apgr, routing_curve
from tierwise.routers import make_router
from tierwise.routers.options import options
from tierwise.routers.transfer import _POINTS, TransferRouter, _rank, _unit_outcomes, sources

P6_SEED = 20301206
CANDIDATES = ("C3", "EQ", "SH", "LSO", "LSOW", "LSOS")


class Instrumented(TransferRouter):
    """`transfer-lsa` whose fit also keeps its leave-subject-out member scores (`oof`) and computes each training
    source's member scores from members fitted on the other sources only (`lso`; NaN with a single source)."""

    def fit(self, data: OutcomeDataset) -> Instrumented:
        super().fit(data)
        counts, vec, shape = self._features(data.prompts)
        src = sources(data)
        self.train_src = src
        self.train_strong, self.train_weak = _unit_outcomes(data)
        self.lso = np.full((len(data), len(self.members)), np.nan)
        names = np.unique(src)
        if len(names) >= 2:
            for s in names:
                te, tr = np.flatnonzero(src == s), np.flatnonzero(src != s)
                f = self._fit_members(data, counts, vec, shape, tr)
                self.lso[te] = self._member_scores(f, counts[te], vec[te], shape[te], [data.prompts[i] for i in te])
        return self


def parts(proxy: str) -> list[tuple[str, OutcomeDataset, OutcomeDataset]]:
    """(part, test, train) per part; training parts unit-scaled as in rounds 9–10."""
    if proxy == "indomain":
        out = []
        for n in ("mmlu", "gsm8k"):
            d = load_benchmark(n)
            for f, te in enumerate(group_folds(d, 5, 0, merge_prompts=True)):
                out.append((f"{n}-f{f}", d.take(te), d.take(np.setdiff1d(np.arange(len(d)), te))))
        return out
    return proxy_parts(proxy, {"p3": 2026, "p6": P6_SEED})[0]


def dump(args: argparse.Namespace) -> None:
    """Per part: the default's member scores on the test questions, its rank grids, weights, centre and scale, the
    options member's quantile and weight in force, and the training rows' leave-subject-out and leave-source-out
    member scores. Prints timings only."""
    for p, test, train, path in unwritten(args, parts):
        try:  # a part is claimed by one process: several `dump`s of one proxy share the parts
            os.close(os.open(path.with_suffix(".claim"), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            continue
        t0 = time.time()
        base = make_router("transfer-lsa", weigh="subject-oof")  # C3's weights (the default until this round)
        base.__class__ = Instrumented
        r = options(base) if not args.no_options else base
        r.fit(train)
        counts, vec, shape = base._features(test.prompts)
        out: dict[str, Any] = {
            "strong": np.asarray(test.strong, float), "weak": np.asarray(test.weak, float),
            "subjects": np.array(test.subjects), "s": base._member_scores(base._fit_dict(), counts, vec, shape,
                                                                           test.prompts),
            "grid": base.rank_grid, "w": base.weights, "centre": base.centre, "scale": base.scale,
            "lso": base.lso, "src": base.train_src, "tstrong": base.train_strong, "tweak": base.train_weak,
        }
        if r is not base:
            out["q"], out["used"] = r._member(*r._counts(test.prompts)), np.array(r.used)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **out)
        tmp.replace(path)
        print(f"<!-- {args.proxy} {p}: {time.time() - t0:.0f} s -->", flush=True)


def _apgr(s: np.ndarray, st: np.ndarray, wk: np.ndarray) -> float:
    return float(apgr(routing_curve(s, st, wk)))


def _within_ranks(x: np.ndarray, src: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    out = np.zeros_like(x)
    for s in np.unique(src):
        m = src == s
        out[m] = rankdata(x[m]) / m.sum()
    return out


def weights(f: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A candidate's member weights from the part's training data only."""
    c3 = np.asarray(f["w"], float)
    m = len(c3)
    if name == "C3":
        return c3
    if name == "EQ":
        return np.ones(m)
    if name == "SH":
        return 0.5 * c3 / c3.sum() + 0.5 / m
    src, lso = f["src"], f["lso"]
    names = [s for s in np.unique(src) if np.isfinite(lso[src == s]).all()]
    st, wk = f["tstrong"], f["tweak"]
    names = [s for s in names if st[src == s].mean() != wk[src == s].mean() or np.any(st[src == s] != wk[src == s])]
    if len(names) < 2:
        return c3
    lead = np.array([[_apgr(lso[src == s, j], st[src == s], wk[src == s]) - 0.5 for j in range(m)] for s in names])
    if name in ("LSO", "LSOW"):
        w = np.maximum(lead.mean(axis=0) if name == "LSO" else lead.min(axis=0), 0.0)
        return w if w.sum() > 0 else np.ones(m)
    # LSOS: the simplex point with the best mean-over-sources APGR of the within-source rank blend
    ranks = np.stack([_within_ranks(lso[:, j], src) for j in range(m)], axis=1)
    best, best_w = -np.inf, np.ones(m)
    steps = 20
    for c in itertools.product(range(steps + 1), repeat=m):
        if sum(c) != steps:
            continue
        w = np.array(c, float) / steps
        blend = ranks @ w
        v = float(np.mean([_apgr(blend[src == s], st[src == s], wk[src == s]) for s in names]))
        closer = np.abs(w - 1 / m).sum() < np.abs(best_w / best_w.sum() - 1 / m).sum()
        if v > best + 1e-12 or (abs(v - best) <= 1e-12 and closer):
            best, best_w = v, w
    return best_w


def scores(f: dict[str, np.ndarray], w: np.ndarray, with_options: bool) -> np.ndarray:
    s = f["s"]
    cols = [_rank(s[:, j], f["grid"][j], _POINTS) + 1e-3 * (s[:, j] - f["centre"][j]) / f["scale"][j]
            for j in range(s.shape[1])]
    base = np.average(np.stack(cols, axis=1), axis=1, weights=w)
    if with_options and "q" in f and float(f["used"]) > 0:
        u = float(f["used"])
        return (1 - u) * base + u * f["q"]
    return base


def load(args: argparse.Namespace, proxy: str) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for path in sorted(args.out.glob(f"{proxy}--*.npz")):
        if ".tmp" in path.name:
            continue
        out[path.name.split("--", 1)[1][:-4]] = dict(np.load(path, allow_pickle=False))
    return out


def read(args: argparse.Namespace) -> None:
    """Every candidate's APGR per part (95% interval; ~ not above random with confidence, ↓ below) and its paired
    lead over C3 (same resamples), with and without the options member; the weights per part."""
    files = load(args, args.proxy)
    if args.proxy == "indomain":  # pool the 5 folds of each benchmark into one out-of-fold score vector
        groups = {}
        for n in ("mmlu", "gsm8k"):
            fs = [files[k] for k in sorted(files) if k.startswith(n + "-")]
            if len(fs) >= 5:
                groups[n] = fs
    else:
        groups = {p: [f] for p, f in files.items()}
    cands = [c for c in args.candidates.split(",") if c]
    for opt in (False, True) if not args.no_options else (False,):
        label = "with the options member (`transfer`)" if opt else "members only (`transfer-lsa`)"
        print(f"\n{args.proxy}, {label}: APGR (95%) and paired lead over C3 (95%, {args.ci} resamples)\n")
        apgr_table(groups, cands, "C3", lambda f, c, opt=opt: scores(f, weights(f, c), opt), args.ci)
    if args.proxy != "indomain":
        print("\nweights per part (normalised), members", ", ".join(("tfidf-logit-wf", "tfidf-ridge-gain",
                                                                     "shape-ridge-gain")))
        for p, f in files.items():
            print(f"  {p}: " + "; ".join(f"{c} " + "/".join(f"{x:.2f}" for x in weights(f, c) / weights(f, c).sum())
                                         for c in cands) + f"; options used {float(f.get('used', 0)):.2f}")


def members(args: argparse.Namespace) -> None:
    """Each member's own APGR per part, on the test questions and, per training source, leave-source-out."""
    for p, f in load(args, args.proxy).items():
        st, wk = f["strong"], f["weak"]
        own = [_apgr(f["s"][:, j], st, wk) for j in range(f["s"].shape[1])]
        src, lso = f["src"], f["lso"]
        per = []
        for s in np.unique(src):
            m = src == s
            if np.isfinite(lso[m]).all():
                per.append(f"{s}: " + "/".join(f"{_apgr(lso[m, j], f['tstrong'][m], f['tweak'][m]):.3f}"
                                               for j in range(lso.shape[1])))
        print(f"{p}: test " + "/".join(f"{x:.3f}" for x in own) + "; leave-source-out " + "; ".join(per))


def registered(args: argparse.Namespace) -> None:
    """The rule registered in bench/RESULTS.md ("Transfer round 11") for SH against the default (C3 weights), both
    with the options member (`transfer`), from the dumps of `--proxy p6` and `--proxy indomain` (LOBO: `read`)."""
    files = load(args, "p6")
    print("| P6 part | n | C3 (default) | SH | SH − C3, paired (95%) |")
    print("|---|---|---|---|---|")
    leads, points, verdicts = paired_rows(files, "C3", "SH", lambda f, c: scores(f, weights(f, c), True), args.ci,
                                          "veto: ")
    m = np.mean(np.stack(leads), axis=0)
    m = m[np.isfinite(m)]
    point, lo = float(np.mean(points)), float(np.quantile(m, 0.025))
    print(f"\nP6 mean paired lead of SH over C3 ({len(files)} folds): {point:+.3f} ({lo:+.3f}…"
          f"{np.quantile(m, 0.975):+.3f})")
    verdicts.insert(0, ("1. P6: mean lead >= 0 and its 95% lower end > -0.01", len(files) == 8 and point >= 0
                        and lo > -0.01))
    verdicts += indomain_rule(load(args, "indomain"), "C3", "SH", lambda f, c: scores(f, weights(f, c), True))
    for name, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print("SH passes its registered rule" if all(ok for _, ok in verdicts) else "SH fails its registered rule")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("dump", "read", "members", "registered"))
    ap.add_argument("--proxy", default="lobo", choices=("lobo", "p3", "p6", "indomain"))
    ap.add_argument("--parts", default="", help="only these parts, comma-separated")
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--no-options", action="store_true", help="dump/read without the options member")
    ap.add_argument("--ci", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("/tmp/transfer11"))
    args = ap.parse_args()
    {"dump": dump, "read": read, "members": members, "registered": registered}[args.what](args)


if __name__ == "__main__":
    main()
