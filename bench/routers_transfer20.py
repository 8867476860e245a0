"""Issue 22, round 20 (session 35, transfer20): a question-level difficulty signal from the question's structure.

Round 19 found T's ordering *within* a subject weak (0.57–0.58). The candidates here add a question-level signal that
should hold across domains, from `question_features20` (regex only: number of options, option-length dispersion and
mean, option-to-option word overlap, numbers, negations in the stem, multi-statement form, mean word length, stem
length, option-to-stem overlap), to the merged default T (`routers_transfer19.score(f, "T")`):

- `qa:<feat>:<x>`: T + x × s × (the feature's rank on the training prompts' grid − 0.5), s the sign of the feature's
  within-group (source/subject) Spearman correlation with the gain on the training data of that part.
- `qb:<feat>:<x>`: the same rank given share x among the members *before* placement (so it also enters the neighbour
  means).
- `ql:<gain|wf>:<x>`: T + x × (rank − 0.5) of a ridge fitted on the training data from the standardised features to
  the within-group centred gain (or weak-fails), ranked on the training predictions' grid.
- `sm:<x>`: T + x × (0.5 − the rank of the *stem-to-option margin* on the training questions' grid): under the router's
  static token vectors (fitted as the options member fits them, on the training prompts' verbal options), the cosine
  of the stem with its closest option less that with the second closest. Sign fixed before any APGR figure: a stem
  that points at one option gives the answer away to both models (less gain). Questions without verbal options
  (`options.verbal_options` empty) get 0. `smb:<x>`: the same rank as a member of share x before placement.

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer20.py --proxies p11,p12,p13,lobo,indomain --candidates T,ql:gain:0.2

Prints, per proxy, each candidate's APGR (mean of the parts), its mean lead over T and its lowest part's lead.
`--proxies p14` is refused unless `--after-registration` (bench/RESULTS.md, "Transfer round 20").
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import routers_transfer19 as r19
from question_features20 import NAMES, matrix
from scipy.stats import spearmanr

from tierwise.routers.transfer import _unit_outcomes, sources

P14_SEED = 20381206
Dump = dict[str, Any]


def parts(proxy: str) -> list[tuple[str, Any, Any]]:
    import routers_transfer18 as r18

    if proxy == "p14":
        from routers_transfer10 import proxy_parts

        return proxy_parts(proxy, {"p14": P14_SEED})[0]  # type: ignore[no-any-return]
    return r18.parts(proxy)  # type: ignore[no-any-return]


def grid_rank(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    grid = np.quantile(ref, np.linspace(0, 1, 257))
    lo = np.searchsorted(grid, x, "left")
    hi = np.searchsorted(grid, x, "right")
    return (lo + hi) / 2 / len(grid)


def within_groups(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> float:
    num = den = 0.0
    for k in np.unique(g):
        m = g == k
        if m.sum() >= 20 and x[m].std() > 0 and y[m].std() > 0:
            num += spearmanr(x[m], y[m]).correlation * m.sum()
            den += m.sum()
    return num / den if den else 0.0


def add_features(f: Dump, test: Any, train: Any, cache: Path) -> None:
    if not cache.exists():
        np.save(cache, matrix(list(train.prompts)))
    xt, x = np.load(cache), matrix(list(test.prompts))
    strong, weak = _unit_outcomes(train)
    src = sources(train)
    g = np.unique([f"{a}\x00{b}" for a, b in zip(src, train.subjects, strict=True)], return_inverse=True)[1]
    gain = strong - weak
    for j, name in enumerate(NAMES):
        s = np.sign(within_groups(xt[:, j], gain, g)) or 1.0
        f[f"qf_{name}"] = s * (grid_rank(x[:, j], xt[:, j]) - 0.5)
    from sklearn.linear_model import RidgeCV

    mu, sd = xt.mean(0), xt.std(0) + 1e-9
    for tname, y in (("gain", gain), ("wf", 1 - weak)):
        yc = y - (np.bincount(g, y) / np.bincount(g))[g]
        m = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit((xt - mu) / sd, yc)
        f[f"ql_{tname}"] = grid_rank(m.predict((x - mu) / sd), m.predict((xt - mu) / sd)) - 0.5


def margins(enc: Any, prompts: list[str]) -> np.ndarray:
    from tierwise.routers.choices import parse_choices
    from tierwise.routers.options import verbal_options

    out = np.full(len(prompts), np.nan)
    for i, p in enumerate(prompts):
        if len(verbal_options(p)) < 2:
            continue
        stem, opts = parse_choices(p)
        v = enc.encode([stem, *opts])
        v = v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-9)
        c = np.sort(v[1:] @ v[0])[::-1]
        out[i] = c[0] - c[1]
    return out


def add_margin(f: Dump, test: Any, train: Any, cache: Path) -> None:
    from tierwise.routers.options import verbal_options
    from tierwise.routers.static_tokens import StaticTokenVectors

    if not cache.exists():
        enc = StaticTokenVectors().fit([o for p in train.prompts for o in verbal_options(p)])
        tr = margins(enc, list(train.prompts))
        np.save(cache, np.concatenate([tr, margins(enc, list(test.prompts))]))
    both = np.load(cache)
    tr, te = both[: len(train.prompts)], both[len(train.prompts):]
    ref = tr[~np.isnan(tr)]
    if not len(ref):  # no training question with verbal options (LOBO on MMLU): the signal is off, as the options member
        f["margin"] = np.zeros(len(te))
        return
    f["margin"] = np.where(np.isnan(te), 0.0, 0.5 - grid_rank(np.nan_to_num(te), ref))


def score(f: Dump, c: str) -> np.ndarray:
    name, *a = c.split(":")
    if name == "qa":
        return r19.score(f, "T") + float(a[1]) * f[f"qf_{a[0]}"]
    if name == "qb":
        g, _ = r19.ranks(f)
        x = float(a[1])
        return r19.place(f, r19.with_options(f, (1 - x) * (g @ r19.weights(f)) + x * (f[f"qf_{a[0]}"] + 0.5)))
    if name == "sm":
        return r19.score(f, "T") + float(a[0]) * f["margin"]
    if name == "smb":
        g, _ = r19.ranks(f)
        x = float(a[0])
        return r19.place(f, r19.with_options(f, (1 - x) * (g @ r19.weights(f)) + x * (f["margin"] + 0.5)))
    if name == "ql":
        return r19.score(f, "T") + float(a[1]) * f[f"ql_{a[0]}"]
    return r19.score(f, c)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxies", default="p11,p12,p13,lobo,indomain")
    ap.add_argument("--candidates", default="T")
    ap.add_argument("--dumps", type=Path, default=Path("/tmp/transfer18"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/transfer20"))
    ap.add_argument("--after-registration", action="store_true")
    args = ap.parse_args()
    if "p14" in args.proxies.split(",") and not args.after_registration:
        raise SystemExit("P14 is read only after the registration (bench/RESULTS.md, 'Transfer round 20')")
    cands = ["T", *[c for c in args.candidates.split(",") if c and c != "T"]]
    args.cache.mkdir(parents=True, exist_ok=True)
    for proxy in args.proxies.split(","):
        files = r19.load(args.dumps, proxy, args.cache, False)
        for part, test, train in parts(proxy):
            if part in files:
                add_features(files[part], test, train, args.cache / f"{proxy}--{part}--trfeat.npy")
                if any(c.startswith("sm") for c in cands):
                    add_margin(files[part], test, train, args.cache / f"{proxy}--{part}--margin.npy")
        r19.table_row(proxy, files, cands, score)


if __name__ == "__main__":
    main()
