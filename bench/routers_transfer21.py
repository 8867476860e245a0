"""Issue 22, round 21 (session 36, transfer21): covariate-shift adaptation with the unlabelled target prompts.

A deployed route has its live window and `tierwise eval` has the data set it evaluates: the *prompts* of the target,
without outcomes. Rounds 1-20 never used them to re-fit. Here each part's training rows are importance-weighted by a
density ratio p(target | x) / p(train | x) estimated with a domain classifier (logistic regression, train vs the
part's test prompts, class-balanced; the training rows' probabilities out of fold, 5 folds), tempered by `alpha`,
clipped to the 1st-99th percentiles and scaled to mean 1, then multiplied into the row weights every member's fit
uses (`TransferRouter._weighted_rows`: source and subject factors); the options member keeps its own fit. The
domain classifier reads `space`:

- `tok`   the static token vectors the options member reads a prompt as (`transfer`'s `vectors.encode`, 384 dims);
- `tfidf` the router's own hashed TF-IDF (idf of the training prompts), 2^18 buckets.

Candidates (scores dumped per part, raw): `D` the default `transfer` (lsa base + options, as rounds 13-20 dumped it);
`iw:<space>:<alpha>` the same router fitted on importance-weighted rows; `iws:<space>:<alpha>` the same with the
weights scaled to mean 1 within each data source (benchmark), so only rows inside a source move. Read with the merged default's placement
(`window-tokens`, `stream_placed` on the token vectors, arrival order `default_rng(0).permutation`): `T` = D placed,
`Tiw:<space>:<alpha>` = the variant placed the same way. The whole test part is the target sample here (what
`tierwise eval` has; a route has only its window of the last 1,000): a screen's upper bound.

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer21.py dump --proxy p11 --variants iw:tok:1,iw:tok:0.5
    nice -n 5 .venv/bin/python bench/routers_transfer21.py read --proxy p11 --candidates T,Tiw:tok:1,Tiw:tok:0.5

Proxies: `lobo`, `p11`, `p12`, `p13` (spent), `indomain`, `p14` (seed P14_SEED, fresh: read only with
`--after-registration`).
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
from routers_transfer10 import proxy_parts
from routers_transfer17 import token_vectors
from routers_transfer_proxies import apgr_table, indomain_rule, paired_rows

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.evaluation.metrics import apgr, routing_curve
from tierwise.routers.options import options, verbal_options
from tierwise.routers.stack import _counts, _idf, _weigh
from tierwise.routers.static_tokens import StaticTokenVectors
from tierwise.routers.transfer import TransferRouter, sources, transfer
from tierwise.routers.window import judged_draws, judged_stream, stream_placed

P14_SEED = 20381206  # the fresh split (rounds 18-20 left it unread)
ORDER_SEED = 0
CLIP = (0.01, 0.99)  # the quantiles the tempered ratios are clipped to (fixed before any figure)
DOMAIN_C = 1.0
DOMAIN_FOLDS = 5
REGISTERED = "JT:0.2:20:1"  # the registered candidate (bench/RESULTS.md, "Transfer round 21")
MIN_LEAD = 0.003  # clause 1's point lead (stricter than round 18's 0: its rule admitted a null candidate)


def parts(proxy: str) -> list[tuple[str, OutcomeDataset, OutcomeDataset]]:
    if proxy == "p14":
        return proxy_parts(proxy, {"p14": P14_SEED})[0]
    if proxy in ("p11", "p12", "p13"):
        return proxy_parts(proxy, {"p11": r16.P11_SEED, "p12": r16.P12_SEED, "p13": r18.P13_SEED})[0]
    return r16.parts(proxy)


class Weighted(TransferRouter):
    """`TransferRouter` whose member fits multiply each training row's weight by `iw[row]`."""

    iw: np.ndarray

    def _weighted_rows(self, data: OutcomeDataset, rows: np.ndarray) -> tuple[OutcomeDataset, np.ndarray, np.ndarray]:
        sub, src, w = super()._weighted_rows(data, rows)
        return sub, src, w * self.iw[rows]


def domain_features(space: str, train: list[str], test: list[str]) -> tuple[Any, Any]:
    if space == "tok":
        v = StaticTokenVectors().fit([o for p in train for o in verbal_options(p)])
        return v.encode(train), v.encode(test)
    if space == "tfidf":
        tf = transfer("lsa", None).tfidf
        a, b = _counts(tf, train), _counts(tf, test)
        idf = _idf(a)
        return _weigh(a, idf), _weigh(b, idf)
    raise ValueError(space)


def density_ratio(xtr: Any, xte: Any, seed: int = 0) -> np.ndarray:
    """p(target | x) / p(train | x) of each training row, class-balanced, out of fold (the row never in its fit)."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    n = xtr.shape[0]
    x = sparse.vstack([xtr, xte]).tocsr() if sparse.issparse(xtr) else np.vstack([xtr, xte])
    y = np.r_[np.zeros(n), np.ones(xte.shape[0])]
    fold = np.random.default_rng(seed).integers(0, DOMAIN_FOLDS, n)
    p = np.zeros(n)
    for k in range(DOMAIN_FOLDS):
        keep = np.r_[fold != k, np.ones(xte.shape[0], bool)]
        m = LogisticRegression(C=DOMAIN_C, max_iter=2000, class_weight="balanced").fit(x[keep], y[keep])
        p[fold == k] = m.predict_proba(xtr[fold == k])[:, 1]
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(p / (1 - p), dtype=float)


def tempered(ratio: np.ndarray, alpha: float, src: np.ndarray | None = None) -> np.ndarray:
    """The ratios to the power `alpha`, clipped to their CLIP quantiles, scaled to mean 1 (within each source when
    `src` is given: the sources keep their shares and only rows inside a source move)."""
    w = ratio ** alpha
    w = np.clip(w, *np.quantile(w, CLIP))
    if src is None:
        return np.asarray(w / w.mean(), dtype=float)
    for s in np.unique(src):
        w[src == s] /= w[src == s].mean()
    return np.asarray(w, dtype=float)


def fit_score(train: OutcomeDataset, test: OutcomeDataset, iw: np.ndarray | None) -> np.ndarray:
    base = transfer("lsa", None)
    if iw is not None:
        base.__class__ = Weighted
        base.iw = iw  # type: ignore[attr-defined]
    r = options(base)
    r.fit(train)
    return np.asarray(r.score(test), dtype=float)


def dump(args: argparse.Namespace) -> None:
    """Per part: outcomes, subjects, the test prompts' token vectors, D's and each variant's raw scores and the
    variants' effective sample share; prints timings and weight summaries only (no APGR)."""
    import tierwise.routers.options as om
    import tierwise.routers.transfer as tm

    om.remember_quantiles = tm.remember_quantiles = lambda *a, **k: None  # calibration only: not read here
    args.out.mkdir(parents=True, exist_ok=True)
    variants = [v for v in args.variants.split(",") if v]
    want = [p for p in args.parts.split(",") if p]
    for p, test, train in parts(args.proxy):
        if want and p not in want:
            continue
        path = args.out / f"{args.proxy}--{p}.npz"
        old = dict(np.load(path, allow_pickle=False)) if path.exists() else {}
        todo = [v for v in ["D", *variants] if f"s_{v}" not in old]
        if not todo:
            continue
        claim = path.with_suffix(f".{'+'.join(todo)}.claim")
        try:
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            continue
        t0 = time.time()
        trp, tep = list(train.prompts), list(test.prompts)
        out: dict[str, Any] = {"strong": np.asarray(test.strong, float), "weak": np.asarray(test.weak, float),
                               "subjects": np.array(test.subjects), **old}
        if "tokens" not in out:
            out["tokens"] = token_vectors(trp, tep)
        ratios: dict[str, np.ndarray] = {}
        for v in todo:
            t1 = time.time()
            iw = None
            if v != "D":
                kind, space, alpha = v.split(":")
                if space not in ratios:
                    ratios[space] = density_ratio(*domain_features(space, trp, tep))
                iw = tempered(ratios[space], float(alpha), sources(train) if kind == "iws" else None)
                out[f"ess_{v}"] = np.array(iw.sum() ** 2 / (iw ** 2).sum() / len(iw))
            out[f"s_{v}"] = fit_score(train, test, iw)
            print(f"<!-- {args.proxy} {p} {v}: {time.time() - t1:.0f} s"
                  + (f", ess {float(out[f'ess_{v}']):.2f}" if v != "D" else "") + " -->", flush=True)
        latest = dict(np.load(path, allow_pickle=False)) if path.exists() else {}
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **{**latest, **out})
        tmp.replace(path)
        claim.unlink()
        print(f"<!-- {args.proxy} {p}: {time.time() - t0:.0f} s -->", flush=True)


def scores(f: dict[str, np.ndarray], c: str) -> np.ndarray:
    if c.startswith("JT:"):  # D placed as a route with validation places it: judged_stream at a judged share
        rate, k, w = c.split(":")[1:4]
        s = f["s_D"]
        return judged_stream(s, f["tokens"], f["strong"], f["weak"], judged_draws(len(s), float(rate), ORDER_SEED),
                             ORDER_SEED, judged_k=int(k), judged_weight=float(w))
    if c == "T":
        return stream_placed(f["s_D"], f["tokens"], ORDER_SEED)
    if c.startswith(("Tiw:", "Tiws:")):
        return stream_placed(f["s_" + c[1:]], f["tokens"], ORDER_SEED)
    return np.asarray(f["s_" + c], dtype=float)  # unplaced: D, iw:<space>:<alpha>


def column(c: str) -> str:
    """The dumped score column a candidate reads."""
    return "D" if c == "T" or c.startswith("JT:") else c[1:] if c.startswith(("Tiw:", "Tiws:")) else c


def load(out: Path, proxy: str) -> dict[str, dict[str, np.ndarray]]:
    return {path.name.split("--", 1)[1][:-4]: dict(np.load(path, allow_pickle=False))
            for path in sorted(out.glob(f"{proxy}--*.npz")) if ".tmp" not in path.name}


def read(args: argparse.Namespace) -> None:
    if args.proxy == "p14" and not args.after_registration:
        raise SystemExit("p14 is read only once a rule for it is committed (--after-registration)")
    files = load(args.out, args.proxy)
    cands = [c for c in args.candidates.split(",") if c]
    files = {p: f for p, f in files.items() if all(f"s_{column(c)}" in f for c in cands)}
    if args.proxy == "indomain":
        groups = {n: [files[k] for k in sorted(files) if k.startswith(n + "-")] for n in ("mmlu", "gsm8k")}
        groups = {n: fs for n, fs in groups.items() if len(fs) == 5}
    else:
        groups = {p: [f] for p, f in files.items()}
    print(f"\n{args.proxy}: APGR (95%) and paired lead over {cands[0]} (95%, {args.ci} resamples)\n")
    apgr_table(groups, cands, cands[0], scores, args.ci)
    ess = {c: [float(f[f"ess_{c[1:]}"]) for f in files.values() if f"ess_{c[1:]}" in f] for c in cands
           if c.startswith(("Tiw:", "Tiws:"))}
    for c, e in ess.items():
        if e:
            print(f"effective sample share of {c}: mean {np.mean(e):.2f} (min {min(e):.2f})")


def registered(args: argparse.Namespace, c: str = REGISTERED, base: str = "T") -> None:
    """The rule registered in bench/RESULTS.md ("Transfer round 21") for `c` against `base`, from the dumps of
    `--proxy p14`, `indomain` and `lobo` (300 resamples by default)."""
    files = load(args.out, "p14")
    print(f"| P14 part | n | {base} (default) | {c} | {c} − {base}, paired (95%) |")
    print("|---|---|---|---|---|")
    leads, points, verdicts = paired_rows(files, base, c, scores, args.ci, "3. veto: ")
    if files:
        m = np.mean(np.stack(leads), axis=0)
        m = m[np.isfinite(m)]
        point, lo, hi = float(np.mean(points)), float(np.quantile(m, 0.025)), float(np.quantile(m, 0.975))
        print(f"\nP14 mean paired lead of {c} over {base} ({len(files)} folds): {point:+.3f} ({lo:+.3f}…{hi:+.3f})")
        verdicts.insert(0, (f"1. P14: {len(files)} of 8 folds, mean lead >= +{MIN_LEAD} and its 95% lower end > 0",
                            len(files) == 8 and point >= MIN_LEAD and lo > 0))
    else:
        verdicts.insert(0, ("1. P14: 8 folds dumped", False))
    verdicts += indomain_rule(load(args.out, "indomain"), base, c, scores)
    lobo = load(args.out, "lobo")
    for p in ("gsm8k", "mmlu", "mt-bench"):
        if p not in lobo:
            verdicts.append((f"4. LOBO {p}: dumped", False))
            continue
        f = lobo[p]
        a = float(apgr(routing_curve(scores(f, c), f["strong"], f["weak"])))
        verdicts.append((f"4. LOBO {p}: {c} {a:.3f} >= 0.58", a >= 0.58))
    for text, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    print(f"{c} passes its registered rule" if all(ok for _, ok in verdicts) else
          f"{c} does not pass its registered rule (or the round is partial)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("dump", "read", "registered"))
    ap.add_argument("--proxy", default="p11", choices=("lobo", "p11", "p12", "p13", "p14", "indomain"))
    ap.add_argument("--parts", default="")
    ap.add_argument("--variants", default="iw:tok:1")
    ap.add_argument("--candidates", default="T,Tiw:tok:1")
    ap.add_argument("--after-registration", action="store_true")
    ap.add_argument("--ci", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("/tmp/transfer21"))
    args = ap.parse_args()
    {"dump": dump, "read": read, "registered": registered}[args.what](args)


if __name__ == "__main__":
    main()
