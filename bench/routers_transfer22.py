"""Issue 22, round 22 (session 37, transfer22): transductive use of the target's unlabelled prompts (dumps, reader).

Round 21 re-weighted the *training* rows towards the target prompts and lost. This round leaves the fit alone and
uses the target's prompts only where the default already does, its placement window: each part's fitted default
`transfer` (lsa base + options member, `D`) is dumped with its members' scores, so a reader can place by other
signals than D's own raw score. Candidates are defined in `transfer22_candidates.py`.

Per part the dump holds: `strong`, `weak`, `subjects`, `tokens` (the router's own static token vectors,
`router.vectors.encode`: what `window-tokens` reads), `s_D` (D's raw scores), `m_raw` (the base's three member
columns: weak-only probability, TF-IDF ridge gain, shape ridge gain), `m_rank` (their ranks on the base's grids),
`m_opt` (the options member's quantile, 0.5 without verbal options), `used` (the options member's weight) and
`weights` (the base's member weights).

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer22.py dump --proxy p11          # two processes share the parts
    nice -n 5 .venv/bin/python bench/routers_transfer22.py read --proxy p11 --candidates T,LP:0.5

Proxies: `lobo`, `p11`-`p14` (spent), `indomain`, `p15` (seed P15_SEED, fresh: read only with `--after-registration`).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import routers_transfer16 as r16
import routers_transfer18 as r18
import routers_transfer21 as r21
import transfer22_candidates as cand
from routers_transfer10 import proxy_parts
from routers_transfer_proxies import apgr_table, indomain_rule, paired_rows

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.evaluation.metrics import apgr, routing_curve
from tierwise.routers.options import options
from tierwise.routers.transfer import _POINTS, _rank, transfer

P15_SEED = 20391206  # the fresh split (P1-P14 spent)
SEEDS = {"p11": r16.P11_SEED, "p12": r16.P12_SEED, "p13": r18.P13_SEED, "p14": r21.P14_SEED, "p15": P15_SEED}
FRESH = "p15"
REGISTERED = "KTW:0.25"  # registered in bench/RESULTS.md ("Transfer round 22") before any P15 dump
BASE = "T"
MIN_LEAD = 0.003  # clause 1's point lead (round 21's)


def parts(proxy: str) -> list[tuple[str, OutcomeDataset, OutcomeDataset]]:
    if proxy in SEEDS:
        return proxy_parts(proxy, {proxy: SEEDS[proxy]})[0]
    return r16.parts(proxy)


def load(out: Path, proxy: str) -> dict[str, dict[str, np.ndarray]]:
    """The parts' dumps, each with its training bank's arrays (`bank_tv`, `bank_gain`, …) when one was dumped."""
    files = r21.load(out, proxy)
    for p, f in files.items():
        b = out / f"bank--{proxy}--{p}.npz"
        if b.exists():
            f.update({f"bank_{k}": v for k, v in np.load(b, allow_pickle=False).items()})
    return files


def fit_dump(train: OutcomeDataset, test: OutcomeDataset) -> dict[str, Any]:
    r = options(transfer("lsa", None))
    r.fit(train)
    prompts = list(test.prompts)
    base = r.base
    counts, vec, shape = base._features(prompts)
    raw = base._member_scores(base._fit_dict(), counts, vec, shape, prompts)
    ranks = np.stack([_rank(raw[:, j], base.rank_grid[j], _POINTS) for j in range(raw.shape[1])], axis=1)
    opt = r._member(*r._counts(prompts)) if r.used else np.full(len(prompts), 0.5)
    return {"s_D": np.asarray(r.score(test), dtype=float), "tokens": r.vectors.encode(prompts).astype(np.float32),
            "m_raw": raw, "m_rank": ranks, "m_opt": np.asarray(opt, dtype=float), "used": np.array(float(r.used)),
            "weights": np.asarray(base.weights, dtype=float)}


def dump(args: argparse.Namespace) -> None:
    """Per part the arrays above; prints timings only (no APGR)."""
    import tierwise.routers.options as om
    import tierwise.routers.transfer as tm

    om.remember_quantiles = tm.remember_quantiles = lambda *a, **k: None  # calibration only: not read here
    args.out.mkdir(parents=True, exist_ok=True)
    want = [p for p in args.parts.split(",") if p]
    for p, test, train in parts(args.proxy):
        path = args.out / f"{args.proxy}--{p}.npz"
        if (want and p not in want) or path.exists():
            continue
        claim = path.with_suffix(".claim")
        try:
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            continue
        t0 = time.time()
        out = {"strong": np.asarray(test.strong, float), "weak": np.asarray(test.weak, float),
               "subjects": np.array(test.subjects), **fit_dump(train, test)}
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **out)
        tmp.replace(path)
        claim.unlink()
        print(f"<!-- {args.proxy} {p}: {time.time() - t0:.0f} s -->", flush=True)


def bank(args: argparse.Namespace) -> None:
    """Per part the training side a neighbour-label candidate reads (`bank--<proxy>--<part>.npz`): the training
    prompts' static token vectors (the same table `D`'s options member fits), their gain and weak failure (outcomes
    on [0, 1] per source, centred within the source), and the weak-only outcome. Prints timings only."""
    from routers_transfer17 import token_vectors

    from tierwise.routers.transfer import _unit_outcomes, centred_within, sources

    want = [p for p in args.parts.split(",") if p]
    for p, _test, train in parts(args.proxy):
        path = args.out / f"bank--{args.proxy}--{p}.npz"
        if (want and p not in want) or path.exists():
            continue
        claim = path.with_suffix(".claim")
        try:
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            continue
        t0 = time.time()
        trp = list(train.prompts)
        src = sources(train)
        strong = np.zeros(len(trp))
        weak = np.zeros(len(trp))
        for s in np.unique(src):  # outcomes on [0, 1] per source (MT-Bench grades)
            sub = train.where(src == s, s)
            strong[src == s], weak[src == s] = _unit_outcomes(sub)
        tv = token_vectors(trp, trp).astype(np.float16)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, tv=tv, gain=centred_within(strong - weak, src), wf=centred_within(1 - weak, src),
                 only=centred_within((1 - weak) * strong, src))
        tmp.replace(path)
        claim.unlink()
        print(f"<!-- bank {args.proxy} {p}: {time.time() - t0:.0f} s -->", flush=True)


def read(args: argparse.Namespace) -> None:
    if args.proxy == FRESH and not args.after_registration:
        raise SystemExit(f"{FRESH} is read only once a rule for it is committed (--after-registration)")
    files = load(args.out, args.proxy)
    cands = [c for c in args.candidates.split(",") if c]
    if args.proxy == "indomain":
        groups = {n: [files[k] for k in sorted(files) if k.startswith(n + "-")] for n in ("mmlu", "gsm8k")}
        groups = {n: fs for n, fs in groups.items() if len(fs) == 5}
    else:
        groups = {p: [f] for p, f in files.items()}
    print(f"\n{args.proxy}: APGR (95%) and paired lead over {cands[0]} (95%, {args.ci} resamples)\n")
    apgr_table(groups, cands, cands[0], cand.scores, args.ci)


def registered(args: argparse.Namespace, c: str = REGISTERED, base: str = BASE) -> None:
    """The rule registered in bench/RESULTS.md ("Transfer round 22") for `c` against `base`, from the dumps of
    `--proxy p15`, `indomain` and `lobo`."""
    files = load(args.out, FRESH)
    print(f"| {FRESH.upper()} part | n | {base} (default) | {c} | {c} − {base}, paired (95%) |")
    print("|---|---|---|---|---|")
    leads, points, verdicts = paired_rows(files, base, c, cand.scores, args.ci, "3. veto: ")
    if files:
        m = np.mean(np.stack(leads), axis=0)
        m = m[np.isfinite(m)]
        point, lo, hi = float(np.mean(points)), float(np.quantile(m, 0.025)), float(np.quantile(m, 0.975))
        print(f"\n{FRESH.upper()} mean paired lead of {c} over {base} ({len(files)} folds): {point:+.3f} "
              f"({lo:+.3f}…{hi:+.3f})")
        verdicts.insert(0, (f"1. {FRESH.upper()}: {len(files)} of 8 folds, mean lead >= +{MIN_LEAD} and its 95% "
                            "lower end > 0", len(files) == 8 and point >= MIN_LEAD and lo > 0))
    else:
        verdicts.insert(0, (f"1. {FRESH.upper()}: 8 folds dumped", False))
    verdicts += indomain_rule(load(args.out, "indomain"), base, c, cand.scores)
    lobo = load(args.out, "lobo")
    for p in ("gsm8k", "mmlu", "mt-bench"):
        if p not in lobo:
            verdicts.append((f"4. LOBO {p}: dumped", False))
            continue
        f = lobo[p]
        a = float(apgr(routing_curve(cand.scores(f, c), f["strong"], f["weak"])))
        verdicts.append((f"4. LOBO {p}: {c} {a:.3f} >= 0.58", a >= 0.58))
    for text, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    print(f"{c} passes its registered rule" if all(ok for _, ok in verdicts) else
          f"{c} does not pass its registered rule (or the round is partial)")


def screen(args: argparse.Namespace) -> None:
    """Point estimates only (spent splits): each candidate's APGR lead over the first, per part and the parts' mean."""
    if args.proxy == FRESH:
        raise SystemExit("the screen reads spent splits only")
    files = load(args.out, args.proxy)
    cands = [c for c in args.candidates.split(",") if c]
    if any(c.startswith("KT") for c in cands):
        files = {p: f for p, f in files.items() if "bank_tv" in f}
    a = {c: {p: float(apgr(routing_curve(cand.scores(f, c), f["strong"], f["weak"]))) for p, f in files.items()}
         for c in cands}
    print(f"| {args.proxy} ({len(files)} parts) | " + " | ".join(files) + " | mean | lowest |")
    print("|---|" + "---|" * (len(files) + 2))
    for c in cands:
        d = [a[c][p] - (0 if c == cands[0] else a[cands[0]][p]) for p in files]
        print(f"| {c} | " + " | ".join(f"{x:+.3f}" if c != cands[0] else f"{x:.3f}" for x in d)
              + f" | {np.mean(d):+.3f} | {min(d):+.3f} |", flush=True)


def subject_means(x: np.ndarray, subj: np.ndarray, names: np.ndarray) -> np.ndarray:
    return np.array([x[subj == s].mean() for s in names])


def subjects(args: argparse.Namespace) -> None:
    """Diagnostic (spent splits only): per part, the Spearman correlation over its subjects between the true subject
    mean gain and the subject means of D, of each member and of the weak-fails rate; size-weighted within-subject
    correlations with the gain too."""
    from scipy.stats import spearmanr

    if args.proxy == FRESH:
        raise SystemExit("diagnostics read spent splits only")
    names = ["D", "wf", "gain", "shape", "opt", "weak-fails (truth)", "kt gain", "kt wf", "kt only"]
    print("| part | subjects | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for p, f in load(args.out, args.proxy).items():
        subj = f["subjects"]
        u = np.unique(subj)
        gain = f["strong"] - f["weak"]
        cols = [f["s_D"], *f["m_rank"].T, f["m_opt"], 1 - f["weak"]]
        if "bank_tv" in f:
            cols += [cand.bank_labels(f, lab) for lab in ("gain", "wf", "only")]
        g = subject_means(gain, subj, u)
        rs = [spearmanr(subject_means(c, subj, u), g)[0] for c in cols]
        print(f"| {p} | {len(u)} | " + " | ".join(f"{r:+.2f}" for r in rs) + " |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("dump", "bank", "read", "registered", "subjects", "screen"))
    ap.add_argument("--proxy", default="p11", choices=("lobo", "indomain", *SEEDS))
    ap.add_argument("--parts", default="")
    ap.add_argument("--candidates", default="T")
    ap.add_argument("--after-registration", action="store_true")
    ap.add_argument("--ci", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("/tmp/transfer22"))
    args = ap.parse_args()
    {"dump": dump, "bank": bank, "read": read, "registered": registered, "subjects": subjects, "screen": screen}[args.what](args)


if __name__ == "__main__":
    main()
