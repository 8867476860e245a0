"""Issue 22, round 13 (session 32, transfer13): the weak-fails member's words shrunk towards what holds across groups.

The default's weak-fails member (`tfidf-logit-wf`) gives every hashed word one weight, learned from all training
subjects at once, so a word that marks hard questions in one subject only (a subject's vocabulary) counts as much on
an unseen subject as one that marks hard questions everywhere. The variants here fit the same logistic regression on
augmented features (Daumé's "frustratingly easy" domain adaptation): each row's TF-IDF vector twice, once in shared
columns and once in columns of its own group, under one L2 penalty; only the shared weights score. A word whose
effect is the same across groups is cheapest in the shared column; a word that matters in one group only is split
between its shared and its group column (half, at GROUP_SCALE 1), so the scoring weights are shrunk towards the
domain-independent ones. Columns dumped beside the default's three (`TRANSFER13_EXTRA`, both by default):

- `ea-subj` groups are subjects within their source (MMLU's 56 subjects, GSM8K, MT-Bench's categories);
- `ea-src`  groups are the data sources (benchmarks).

Candidates: `D` the default (three members, "subject-oof-shrunk" weights, the options member as in force); `A` /
`B` D with `ea-subj` / `ea-src` instead of `tfidf-logit-wf`, "subject-oof-shrunk" weights over its own members.

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer13.py dump --proxy lobo --out /tmp/transfer13
    nice -n 5 .venv/bin/python bench/routers_transfer13.py read --proxy lobo --out /tmp/transfer13
    nice -n 5 .venv/bin/python bench/routers_transfer13.py dump --proxy p8 --out /tmp/transfer13
    nice -n 5 .venv/bin/python bench/routers_transfer13.py registered --out /tmp/transfer13

Proxies: `lobo`, `p7` (spent; transfer12's seed), `p8` (this round's fresh split, seed P8_SEED), `indomain` (5-fold
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
from routers_transfer12 import P6_SEED, P7_SEED, Instrumented
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
    shared_columns,
    transfer,
)

P8_SEED = 20321206  # a seed no split used: P3 2026, P4 20281206, P5 20291206, P6 20301206, P7 20311206
EXTRA = tuple(x for x in os.environ.get("TRANSFER13_EXTRA", "ea-subj,ea-src").split(",") if x)
COLUMNS = (*MEMBERS, *EXTRA)
CANDIDATES = {"D": MEMBERS, "A": ("ea-subj", *MEMBERS[1:]), "B": ("ea-src", *MEMBERS[1:])}
REGISTERED = "A"  # the candidate of the registered rule (bench/RESULTS.md, "Transfer round 13")


def shared_logit(x: sp.csr_matrix, y: np.ndarray, w: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, float]:
    """The weak-fails logistic regression on `shared_columns` of its features (the library's `words=` arithmetic,
    GROUP_SCALE 1: fixed before any figure); its shared weights and intercept."""
    from sklearn.linear_model import LogisticRegression

    if y.min() == y.max():
        return np.zeros(x.shape[1], np.float32), 0.0
    m = LogisticRegression(C=LOGIT_C, max_iter=2000).fit(shared_columns(x, group), y, sample_weight=w)
    return m.coef_[0][: x.shape[1]].astype(np.float32), float(m.intercept_[0])


class Instrumented13(Instrumented):
    """`transfer-lsa` (MEMBERS) with EXTRA columns fitted and scored beside them; round 12's `fit` (the rank grids,
    leave-subject-out scores and the fit on all rows kept)."""

    KNOWN = (*TransferRouter.KNOWN, "ea-subj", "ea-src")
    extra = EXTRA  # the columns fitted and scored beside MEMBERS (a later round's subclass names its own)

    def _fit_members(self, data: OutcomeDataset, counts: Any, vec: np.ndarray, shape: np.ndarray,
                     rows: np.ndarray) -> dict[str, Any]:
        names, self.members = self.members, self.members[: len(MEMBERS)]
        try:
            fit = TransferRouter._fit_members(self, data, counts, vec, shape, rows)
        finally:
            self.members = names
        sub, src, w = self._weighted_rows(data, rows)
        _, weak = _unit_outcomes(sub)
        x = _weigh(counts[rows], fit["idf"])
        y = (weak < 0.5).astype(int)
        for name in self.extra:
            keys = src if name == "ea-src" else np.array([f"{a}\x00{b}" for a, b in zip(src, sub.subjects,
                                                                                       strict=True)])
            fit[name] = shared_logit(x, y, w, np.unique(keys, return_inverse=True)[1])
        return fit

    def _member_scores(self, fit: dict[str, Any], counts: Any, vec: np.ndarray, shape: np.ndarray,
                       prompts: Any) -> np.ndarray:
        names, self.members = self.members, self.members[: len(MEMBERS)]
        try:
            s = TransferRouter._member_scores(self, fit, counts, vec, shape, prompts)
        finally:
            self.members = names
        x = _weigh(counts, fit["idf"])
        return np.c_[s, *(_sigmoid(np.asarray(x @ fit[n][0], dtype=float) + fit[n][1]) for n in self.extra)]


def parts(proxy: str) -> list[tuple[str, OutcomeDataset, OutcomeDataset]]:
    if proxy == "indomain":
        return parts11("indomain")
    return proxy_parts(proxy, {"p6": P6_SEED, "p7": P7_SEED, "p8": P8_SEED})[0]


def dump(args: argparse.Namespace, cls: type[Instrumented13] = Instrumented13, columns: tuple[str, ...] = COLUMNS,
         candidates: dict[str, tuple[str, ...]] = CANDIDATES, parts_of: Any = None) -> None:
    """Per part: the columns' scores on the test questions, rank grids, centre, scale, every candidate's member
    weights ("subject-oof" leads, before shrinking), the options member's score and weight in force. Prints timings
    only. Several processes may dump one proxy: a part is claimed by one."""
    import tierwise.routers.options as om

    om.remember_quantiles = lambda *a, **k: None  # type: ignore[assignment]  # calibration only: not read here
    for p, test, train, path in unwritten(args, parts_of or parts):
        try:
            os.close(os.open(path.with_suffix(".claim"), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            continue
        t0 = time.time()
        base = transfer("lsa", None, weigh="subject-oof")
        base.__class__ = cls
        base.members = columns
        r = options(base)
        r.fit(train)
        counts, vec, shape = base._features(test.prompts)
        out: dict[str, Any] = {
            "strong": np.asarray(test.strong, float), "weak": np.asarray(test.weak, float),
            "subjects": np.array(test.subjects), "grid": base.rank_grid, "centre": base.centre, "scale": base.scale,
            "s": base._member_scores(base.last_fit, counts, vec, shape, test.prompts),
            "q": r._member(*r._counts(test.prompts)), "used": np.array(r.used), "columns": np.array(columns),
        }
        for c, cols in candidates.items():
            if set(cols) <= set(columns):
                out[f"w_{c}"] = oof_weights(base.oof[:, [columns.index(k) for k in cols]], train, base.source_power)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **out)
        tmp.replace(path)
        print(f"<!-- {args.proxy} {p}: {time.time() - t0:.0f} s -->", flush=True)


def scores(f: dict[str, np.ndarray], c: str, with_options: bool = True,
           candidates: dict[str, tuple[str, ...]] = CANDIDATES) -> np.ndarray:
    have = [str(x) for x in f["columns"]]
    cols = [have.index(k) for k in candidates[c]]
    w = np.asarray(f[f"w_{c}"], float)
    w = (1 - SHRINK) * w / w.sum() + SHRINK / len(w)
    s = f["s"]
    ranks = [_rank(s[:, j], f["grid"][j], _POINTS) + 1e-3 * (s[:, j] - f["centre"][j]) / f["scale"][j] for j in cols]
    base = np.average(np.stack(ranks, axis=1), axis=1, weights=w)
    u = float(f["used"])
    return (1 - u) * base + u * f["q"] if with_options and u > 0 else base


def read(args: argparse.Namespace, candidates: dict[str, tuple[str, ...]] = CANDIDATES, fresh: str = "p8",
         base: str = "D") -> None:
    if args.proxy == fresh and not args.after_registration:
        raise SystemExit(f"{fresh} is read only by `registered`, or with --after-registration once the rule is committed")
    files = load(args, args.proxy)
    if args.proxy == "indomain":
        groups = {n: [files[k] for k in sorted(files) if k.startswith(n + "-")] for n in ("mmlu", "gsm8k")}
        groups = {n: fs for n, fs in groups.items() if len(fs) == 5}
    else:
        groups = {p: [f] for p, f in files.items()}
    cands = [c for c in args.candidates.split(",") if c and all(f"w_{c}" in f for f in files.values())]
    print(f"\n{args.proxy}: APGR (95%) and paired lead over {base} (95%, {args.ci} resamples)\n")
    apgr_table(groups, cands, base, lambda f, c: scores(f, c, not args.no_options, candidates), args.ci)


def registered(args: argparse.Namespace, c: str = REGISTERED, candidates: dict[str, tuple[str, ...]] = CANDIDATES,
               fresh: str = "p8", base: str = "D") -> None:
    """The rule registered in bench/RESULTS.md ("Transfer round 13"; rounds 14 and 15 the same on their own split)
    for `c` against the default `base` (round 15: round 14's A), both with the options member, from the dumps of `--proxy <fresh>`, `--proxy indomain` and
    `--proxy lobo`."""
    def score(f: dict[str, np.ndarray], k: str) -> np.ndarray:
        return scores(f, k, True, candidates)

    name = fresh.upper()
    files = load(args, fresh)
    print(f"| {name} part | n | {base} (default) | {c} | {c} − {base}, paired (95%) |")
    print("|---|---|---|---|---|")
    leads, points, verdicts = paired_rows(files, base, c, score, args.ci, "3. veto: ")
    if files:
        m = np.mean(np.stack(leads), axis=0)
        m = m[np.isfinite(m)]
        point, lo = float(np.mean(points)), float(np.quantile(m, 0.025))
        print(f"\n{name} mean paired lead of {c} over {base} ({len(files)} folds): {point:+.3f} ({lo:+.3f}…"
              f"{np.quantile(m, 0.975):+.3f})")
        verdicts.insert(0, (f"1. {name}: {len(files)} of 8 folds, mean lead >= 0 and its 95% lower end > -0.01",
                            len(files) == 8 and point >= 0 and lo > -0.01))
    else:
        verdicts.insert(0, (f"1. {name}: 8 folds dumped", False))
    verdicts += indomain_rule(load(args, "indomain"), base, c, score)
    lobo = load(args, "lobo")
    for p in ("gsm8k", "mmlu", "mt-bench"):
        if p not in lobo:
            verdicts.append((f"4. LOBO {p}: dumped", False))
            continue
        f = lobo[p]
        a = float(apgr(routing_curve(score(f, c), f["strong"], f["weak"])))
        verdicts.append((f"4. LOBO {p}: {c} {a:.3f} >= 0.58", a >= 0.58))
    for text, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    print(f"{c} passes its registered rule" if all(ok for _, ok in verdicts) else
          f"{c} does not pass its registered rule (or the round is partial)")


def read_or_registered(args: argparse.Namespace, candidates: dict[str, tuple[str, ...]], c: str, fresh: str,
                       base: str, previews: tuple[str, ...]) -> None:
    """`read` or `registered` (rounds 15 and 16), where a candidate asked for that begins with one of `previews`
    (`C:<size>:<lambda>`) is a preview with `base`'s members."""
    cands = {**candidates, **{k: candidates[base] for k in args.candidates.split(",") if k.startswith(previews)}}
    if args.what == "read":
        read(args, cands, fresh=fresh, base=base)
    else:
        registered(args, c, cands, fresh=fresh, base=base)


def arguments(round_: int, fresh: int, candidates: str) -> argparse.ArgumentParser:
    """The command line of a transfer round from 13 on (rounds 14 and 15 read it too): `--proxy` lobo, p6 to the
    round's fresh split p<fresh>, indomain; the fresh split is read only `--after-registration`."""
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("dump", "read", "registered"))
    ap.add_argument("--proxy", default="lobo",
                    choices=("lobo", *(f"p{n}" for n in range(6, fresh + 1)), "indomain"))
    ap.add_argument("--parts", default="", help="only these parts, comma-separated")
    ap.add_argument("--candidates", default=candidates)
    ap.add_argument("--no-options", action="store_true", help="read without the options member")
    ap.add_argument("--after-registration", action="store_true", help=f"allow `read --proxy p{fresh}`")
    ap.add_argument("--ci", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path(f"/tmp/transfer{round_}"))
    return ap


def main() -> None:
    args = arguments(13, 8, ",".join(CANDIDATES)).parse_args()
    {"dump": dump, "read": read, "registered": registered}[args.what](args)


if __name__ == "__main__":
    main()
