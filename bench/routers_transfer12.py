"""Issue 22, round 12 (session 31, transfer12): members whose relation to difficulty might hold across benchmarks.

One fit per part of `transfer-lsa` with variants of the weak-fails member beside the default's three, so that every
candidate is read from the same fit (the default's members, rank grids and weights are reproduced exactly from its
columns; `TRANSFER12_EXTRA` names the variants dumped, both by default):

- `logit-src`  the weak-fails logistic regression on hashed TF-IDF with one free intercept per data source (a column
               per source worth SOURCE_SCALE, barely penalised, dropped when scoring), so the words learn which
               question of a benchmark the weak model fails rather than which benchmark it fails more;
- `logit-subj` the same with one intercept per subject within its source (`make_router("transfer",
               offsets="subject")`: the same arithmetic).

Candidates (`CANDIDATES`, computed in `scores`): `D` the default (three members, weights "subject-oof-shrunk", the
options member as in force); `S` / `J` D with `logit-src` / `logit-subj` instead of `tfidf-logit-wf`; `S4` / `J4`
the variant as a fourth member; each with "subject-oof-shrunk" weights over its own members.

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer12.py dump --proxy lobo --out /tmp/transfer12
    nice -n 5 .venv/bin/python bench/routers_transfer12.py read --proxy lobo --out /tmp/transfer12
    TRANSFER12_EXTRA=logit-subj nice -n 5 .venv/bin/python bench/routers_transfer12.py dump --proxy p7 --out /tmp/transfer12
    nice -n 5 .venv/bin/python bench/routers_transfer12.py registered --out /tmp/transfer12

Proxies: `lobo`, `p6` (spent; transfer11's seed), `p7` (this round's fresh split, seed P7_SEED), `indomain` (5-fold
CV by question on MMLU and on GSM8K). `dump` prints only timings; `read` prints figures.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from routers_transfer10 import proxy_parts, unwritten
from routers_transfer11 import load
from routers_transfer11 import parts as parts11
from routers_transfer_proxies import apgr_table, indomain_rule, paired_rows

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.evaluation.metrics import apgr, routing_curve
from tierwise.routers.options import options
from tierwise.routers.transfer import (
    _POINTS,
    LOGIT_C,
    MEMBERS,
    SHRINK,
    TransferRouter,
    _rank,
    _sigmoid,
    _unit_outcomes,
    _weigh,
    oof_weights,
    transfer,
)

P6_SEED = 20301206
P7_SEED = 20311206
SOURCE_SCALE = 30.0  # the source columns' value: a per-source intercept costs 1/30² of a word's penalty
EXTRA = tuple(os.environ.get("TRANSFER12_EXTRA", "logit-src,logit-subj").split(","))  # P7: the registered one only
COLUMNS = (*MEMBERS, *EXTRA)
CANDIDATES = {"D": MEMBERS, "S": ("logit-src", *MEMBERS[1:]), "J": ("logit-subj", *MEMBERS[1:]),
              "S4": (*MEMBERS, "logit-src"), "J4": (*MEMBERS, "logit-subj")}


class Instrumented(TransferRouter):
    """`transfer-lsa` (MEMBERS) with EXTRA columns fitted and scored beside them (the weak-fails logistic with free
    intercepts per source, `logit-src`, or per subject within its source, `logit-subj`); the parent's `fit` makes
    their rank grids and leave-subject-out leads as for any member."""

    KNOWN = (*TransferRouter.KNOWN, *("logit-src", "logit-subj"))

    def _fit_members(self, data: OutcomeDataset, counts: Any, vec: np.ndarray, shape: np.ndarray,
                     rows: np.ndarray) -> dict[str, Any]:
        from sklearn.linear_model import LogisticRegression

        fit = super()._fit_members(data, counts, vec, shape, rows)
        sub, src, w = self._weighted_rows(data, rows)
        _, weak = _unit_outcomes(sub)
        x = _weigh(counts[rows], fit["idf"])
        y = (weak < 0.5).astype(int)
        for name in EXTRA:
            keys = src if name == "logit-src" else np.array([f"{a}\x00{b}" for a, b in zip(src, sub.subjects,
                                                                                           strict=True)])
            _, inv = np.unique(keys, return_inverse=True)
            onehot = sp.csr_matrix((np.full(len(rows), SOURCE_SCALE), (np.arange(len(rows)), inv)),
                                   shape=(len(rows), int(inv.max()) + 1))
            if y.min() == y.max():
                fit[name] = np.zeros(x.shape[1], np.float32)
                continue
            m = LogisticRegression(C=LOGIT_C, max_iter=2000, fit_intercept=False).fit(
                sp.hstack([x, onehot]).tocsr(), y, sample_weight=w)
            fit[name] = m.coef_[0][: x.shape[1]].astype(np.float32)
        return fit

    def _member_scores(self, fit: dict[str, Any], counts: Any, vec: np.ndarray, shape: np.ndarray,
                       prompts: Any) -> np.ndarray:
        names, self.members = self.members, self.members[: len(MEMBERS)]  # the parent scores the default's
        try:
            s = super()._member_scores(fit, counts, vec, shape, prompts)
        finally:
            self.members = names
        x = _weigh(counts, fit["idf"])
        return np.c_[s, *(_sigmoid(np.asarray(x @ fit[n], dtype=float)) for n in EXTRA)]

    def _fit_dict(self) -> dict[str, Any]:
        return self.last_fit

    def _standardise(self, s: np.ndarray) -> None:
        self.oof = s.copy()  # the leave-subject-out member scores (fit() standardises them)
        super()._standardise(s)

    def fit(self, data: OutcomeDataset) -> Instrumented:
        keep: dict[str, Any] = {}
        orig = self._fit_members

        def spy(*a: Any) -> dict[str, Any]:
            f = orig(*a)
            keep["last"] = f
            return f

        self._fit_members = spy  # type: ignore[method-assign]
        super().fit(data)
        self.last_fit = keep["last"]  # the fit on all rows (fit() fits it last)
        return self


def parts(proxy: str) -> list[tuple[str, OutcomeDataset, OutcomeDataset]]:
    if proxy == "indomain":
        return parts11("indomain")
    return proxy_parts(proxy, {"p6": P6_SEED, "p7": P7_SEED})[0]


def dump(args: argparse.Namespace) -> None:
    """Per part: the columns' scores on the test questions, rank grids, centre, scale, the weights of every
    candidate's members ("subject-oof" leads, before shrinking), the options member's score and weight in force.
    Prints timings only."""
    import tierwise.routers.options as om

    om.remember_quantiles = lambda *a, **k: None  # type: ignore[assignment]  # calibration only: not read here
    for p, test, train, path in unwritten(args, parts):
        t0 = time.time()
        base = transfer("lsa", None, weigh="subject-oof")
        base.__class__ = Instrumented
        base.members = COLUMNS
        r = options(base)
        r.fit(train)
        counts, vec, shape = base._features(test.prompts)
        out: dict[str, Any] = {
            "strong": np.asarray(test.strong, float), "weak": np.asarray(test.weak, float),
            "subjects": np.array(test.subjects), "grid": base.rank_grid, "centre": base.centre, "scale": base.scale,
            "s": base._member_scores(base.last_fit, counts, vec, shape, test.prompts),
            "q": r._member(*r._counts(test.prompts)), "used": np.array(r.used), "columns": np.array(COLUMNS),
        }
        for c, cols in CANDIDATES.items():
            if not set(cols) <= set(COLUMNS):
                continue
            out[f"w_{c}"] = oof_weights(base.oof[:, [COLUMNS.index(k) for k in cols]], train, base.source_power)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **out)
        tmp.replace(path)
        print(f"<!-- {args.proxy} {p}: {time.time() - t0:.0f} s -->", flush=True)


def scores(f: dict[str, np.ndarray], c: str, with_options: bool = True) -> np.ndarray:
    have = [str(x) for x in f["columns"]] if "columns" in f else [*MEMBERS, "logit-src", "logit-subj"]
    cols = [have.index(k) for k in CANDIDATES[c]]
    w = np.asarray(f[f"w_{c}"], float)
    w = (1 - SHRINK) * w / w.sum() + SHRINK / len(w)
    s = f["s"]
    ranks = [_rank(s[:, j], f["grid"][j], _POINTS) + 1e-3 * (s[:, j] - f["centre"][j]) / f["scale"][j] for j in cols]
    base = np.average(np.stack(ranks, axis=1), axis=1, weights=w)
    u = float(f["used"])
    return (1 - u) * base + u * f["q"] if with_options and u > 0 else base


def read(args: argparse.Namespace) -> None:
    files = load(args, args.proxy)
    if args.proxy == "indomain":
        pooled = {}
        for n in ("mmlu", "gsm8k"):
            fs = [files[k] for k in sorted(files) if k.startswith(n + "-")]
            if len(fs) == 5:
                pooled[n] = fs
        groups = pooled
    else:
        groups = {p: [f] for p, f in files.items()}
    cands = [c for c in args.candidates.split(",") if c and all(f"w_{c}" in f for f in files.values())]
    print(f"\n{args.proxy}: APGR (95%) and paired lead over D (95%, {args.ci} resamples)\n")
    apgr_table(groups, cands, "D", lambda f, c: scores(f, c, not args.no_options), args.ci)
    if args.proxy != "indomain":
        print("\nweights (normalised, shrunk) per part:")
        for p, f in files.items():
            ws = []
            for c in cands:
                w = np.asarray(f[f"w_{c}"], float)
                w = (1 - SHRINK) * w / w.sum() + SHRINK / len(w)
                ws.append(f"{c} " + "/".join(f"{x:.2f}" for x in w))
            print(f"  {p}: " + "; ".join(ws) + f"; options used {float(f['used']):.2f}")


def registered(args: argparse.Namespace) -> None:
    """The rule registered in bench/RESULTS.md ("Transfer round 12") for J against the default D, both with the
    options member, from the dumps of `--proxy p7`, `--proxy indomain` and `--proxy lobo`."""
    files = load(args, "p7")
    print("| P7 part | n | D (default) | J | J − D, paired (95%) |")
    print("|---|---|---|---|---|")
    leads, points, verdicts = paired_rows(files, "D", "J", scores, args.ci, "3. veto: ")
    if files:
        m = np.mean(np.stack(leads), axis=0)
        m = m[np.isfinite(m)]
        point, lo = float(np.mean(points)), float(np.quantile(m, 0.025))
        print(f"\nP7 mean paired lead of J over D ({len(files)} folds): {point:+.3f} ({lo:+.3f}…"
              f"{np.quantile(m, 0.975):+.3f})")
        verdicts.insert(0, ("1. P7: 8 folds, mean lead >= 0 and its 95% lower end > -0.01",
                            len(files) == 8 and point >= 0 and lo > -0.01))
    else:
        verdicts.insert(0, ("1. P7: 8 folds dumped", False))
    verdicts += indomain_rule(load(args, "indomain"), "D", "J", scores)
    for p, f in load(args, "lobo").items():
        aj_ = float(apgr(routing_curve(scores(f, "J"), f["strong"], f["weak"])))
        verdicts.append((f"4. LOBO {p}: J {aj_:.3f} >= 0.58", aj_ >= 0.58))
    for name, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print("J passes its registered rule" if all(ok for _, ok in verdicts) else "J does not pass its registered rule")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("dump", "read", "registered"))
    ap.add_argument("--proxy", default="lobo", choices=("lobo", "p6", "p7", "indomain"))
    ap.add_argument("--parts", default="", help="only these parts, comma-separated")
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--no-options", action="store_true", help="read without the options member")
    ap.add_argument("--ci", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("/tmp/transfer12"))
    args = ap.parse_args()
    {"dump": dump, "read": read, "registered": registered}[args.what](args)


if __name__ == "__main__":
    main()
