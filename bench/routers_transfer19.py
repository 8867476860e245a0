"""Issue 22, round 19 (session 35, transfer19): ideas outside the score-placement family, on spent splits only.

Every candidate is the merged default's arithmetic with one change, then placed as the default places (`window-tokens`,
`stream_placed` over the router's static token vectors in the order `default_rng(0).permutation(n)`), so each is
read against **T** (the merged default without judged verdicts: what a route without `validation` does):

- `D`: T unplaced (for scale).
- `u:<x>`: the options member's share `x` in place of the one fitted (`used`, 0.25).
- `w:<a>:<b>:<c>`: fixed member weights (weak-fails logit, gain ridge, shape ridge) in place of "subject-oof-shrunk".
- `wr:<mix>`: each member ranked among the last 1,000 requests' scores of that member (from 100 on) instead of on the
  training grid, mixed `mix` : 1 − `mix` with the grid rank (a rank calibration re-fitted to recent traffic).
- `sml:<blend>`: member weights from the window's rank covariances (a rank-one fit of the off-diagonal, as the
  spectral meta-learner estimates unlabelled classifiers' accuracies), blended with the fitted weights.
- `geo`, `max`, `min`, `sq`: other ways to combine the member ranks (geometric, max, min, quadratic mean).
- `sr:<x>`: the dumped strong-fails column `sr` as a fourth member of weight `x`; `A`: round 14's `wf-sr` member.
- `len:<w>`: the placed score less `w` × its slope on log prompt length fitted on the window (length de-biased).
- `sub:<gain|wf>:<x>`: a subject-level member: a ridge (RidgeCV, leave-one-group-out alphas) from each training
  group's centroid of token vectors to its mean (within-source centred) gain or weak-fails, read at the request's
  vector, ranked on the training questions' predictions, share `x`.
- Oracles, not routes: `O` (T + the true subject's mean gain on the part), `Oonly` (the true subject's mean gain,
  T within a subject), `within` (T less its subject's mean: within-subject ordering only).

It reads the dumps of round 18 (`routers_transfer16.py dump`: P11–P13, LOBO, in-domain; nothing new is fitted but
`sub:`, whose token vectors of the training prompts are cached in --cache).

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer19.py --proxies p11,p12,p13,lobo,indomain --dumps /tmp/transfer18 \
      --candidates T,D,u:0.4,w:1:1:1,wr:1,sml:0.5,sq,sr:0.1,len:0.5,sub:gain:0.25

Prints, per proxy, each candidate's APGR (mean of the proxy's parts; in-domain: MMLU and GSM8K pooled over their five
CV folds), its mean lead over T and its lowest part's lead. Point estimates only: a screen, not a verdict.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from tierwise.evaluation.metrics import apgr, routing_curve
from tierwise.routers.transfer import _POINTS, SHRINK, _rank, _unit_outcomes, centred_within, sources
from tierwise.routers.window import stream_placed

MEMBERS = ("tfidf-logit-wf", "tfidf-ridge-gain", "shape-ridge-gain")
WINDOW, WARM = 1000, 100
Dump = dict[str, Any]


def load(dumps: Path, proxy: str, cache: Path, need_parts: bool) -> dict[str, Dump]:
    out: dict[str, Dump] = {}
    for path in sorted(dumps.glob(f"{proxy}--*.npz")):
        if ".tmp" in path.name:
            continue
        part = path.name.split("--", 1)[1][:-4]
        f = dict(np.load(path, allow_pickle=False))
        f["tokens"] = np.load(dumps / f"{proxy}--{part}--tokens.npy")
        out[part] = f
    if need_parts:
        import routers_transfer18 as r18

        for part, test, train in r18.parts(proxy):
            if part in out:
                out[part]["len"] = np.log1p(np.array([len(p) for p in test.prompts], float))
                out[part].update(subject_members(out[part], train, cache / f"{proxy}--{part}--trtokens.npy"))
    return out


def subject_members(f: Dump, train: Any, path: Path) -> Dump:
    """`sub:` members: training groups' token-vector centroids → their mean centred gain / weak-fails (ridge)."""
    from routers_transfer17 import token_vectors
    from sklearn.linear_model import RidgeCV

    if not path.exists():
        np.save(path, token_vectors(list(train.prompts), list(train.prompts)))
    v = np.load(path)
    strong, weak = _unit_outcomes(train)
    src = sources(train)
    keys = np.array([f"{a}\x00{b}" for a, b in zip(src, train.subjects, strict=True)])
    groups, inv = np.unique(keys, return_inverse=True)
    n = np.bincount(inv)
    centroids = np.stack([v[inv == g].mean(axis=0) for g in range(len(groups))])
    out = {}
    for name, y in (("gain", centred_within(strong - weak, src)), ("wf", centred_within(1 - weak, src))):
        m = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(centroids, np.bincount(inv, y) / n, sample_weight=np.sqrt(n))
        grid = np.quantile(m.predict(v), np.linspace(0, 1, 257))
        out[f"sub_{name}"] = np.interp(m.predict(f["tokens"]), grid, np.linspace(0, 1, 257))
    return out


def weights(f: Dump) -> np.ndarray:
    w = np.asarray(f["w_D"], float)
    return (1 - SHRINK) * w / w.sum() + SHRINK / len(w)


def ranks(f: Dump, cols: tuple[str, ...] = MEMBERS) -> tuple[np.ndarray, np.ndarray]:
    have = [str(x) for x in f["columns"]]
    ix = [have.index(k) for k in cols]
    s = f["s"]
    g = np.stack([_rank(s[:, j], f["grid"][j], _POINTS) + 1e-3 * (s[:, j] - f["centre"][j]) / f["scale"][j]
                  for j in ix], axis=1)
    return g, s[:, ix]


def with_options(f: Dump, base: np.ndarray, u: float | None = None) -> np.ndarray:
    u = float(f["used"]) if u is None else u
    return (1 - u) * base + u * f["q"]


def place(f: Dump, s: np.ndarray) -> np.ndarray:
    return stream_placed(s, f["tokens"], 0)


def order(n: int) -> np.ndarray:
    return np.random.default_rng(0).permutation(n)


def window_ranks(f: Dump, mix: float) -> np.ndarray:
    g, raw = ranks(f)
    out = g.copy()
    seq = order(len(g))
    for j, i in enumerate(seq):
        past = raw[seq[max(0, j - WINDOW):j]]
        if len(past) >= WARM:
            out[i] = mix * ((past < raw[i]).mean(0) + 0.5 * (past == raw[i]).mean(0)) + (1 - mix) * g[i]
    return out


def sml(f: Dump, blend: float) -> np.ndarray:
    g, _ = ranks(f)
    w0 = weights(f)
    base = g @ w0
    seq = order(len(g))
    for j, i in enumerate(seq):
        past = seq[max(0, j - WINDOW):j]
        if len(past) < 2 * WARM:
            continue
        c = np.cov(g[past].T)
        v = np.array([np.sqrt(max(c[a, b] * c[a, d] / max(c[b, d], 1e-9), 0.0))
                      for a, b, d in ((0, 1, 2), (1, 0, 2), (2, 0, 1))])
        w = blend * w0 + (1 - blend) * v / v.sum() if v.sum() > 0 else w0
        base[i] = g[i] @ w / w.sum()
    return base


def length_debiased(f: Dump, s: np.ndarray, w: float) -> np.ndarray:
    out = s.copy()
    seq = order(len(s))
    for j, i in enumerate(seq):
        past = seq[max(0, j - WINDOW):j]
        x, y = f["len"][past], s[past]
        if len(past) >= WARM and x.var() > 0:
            out[i] -= w * ((x - x.mean()) * (y - y.mean())).mean() / x.var() * (f["len"][i] - x.mean())
    return out


def subject_gain(f: Dump) -> np.ndarray:
    sj = np.unique(f["subjects"], return_inverse=True)[1]
    g = f["strong"] - f["weak"]
    return (np.bincount(sj, g) / np.bincount(sj))[sj]


def score(f: Dump, c: str) -> np.ndarray:
    name, *a = c.split(":")
    g, _ = ranks(f)
    w = weights(f)
    if name in ("T", "D"):
        s = with_options(f, g @ w)
        return s if name == "D" else place(f, s)
    if name == "u":
        return place(f, with_options(f, g @ w, float(a[0])))
    if name == "w":
        return place(f, with_options(f, g @ np.array([float(x) for x in a]) / sum(float(x) for x in a)))
    if name == "wr":
        return place(f, with_options(f, window_ranks(f, float(a[0])) @ w))
    if name == "sml":
        return place(f, with_options(f, sml(f, float(a[0]))))
    if name in ("geo", "max", "min", "sq"):
        base = {"geo": lambda: np.exp(np.log(np.clip(g, 1e-3, 1)) @ w), "max": lambda: g.max(1),
                "min": lambda: g.min(1), "sq": lambda: np.sqrt(g ** 2 @ w)}[name]()
        return place(f, with_options(f, base))
    if name == "sr":
        g4, _ = ranks(f, (*MEMBERS, "sr"))
        w4 = np.r_[w, float(a[0])]
        return place(f, with_options(f, g4 @ w4 / w4.sum()))
    if name == "A":
        ga, _ = ranks(f, ("wf-sr", *MEMBERS[1:]))
        return place(f, with_options(f, ga @ w))
    if name == "len":
        return length_debiased(f, score(f, "T"), float(a[0]))
    if name == "sub":
        x = float(a[1])
        return place(f, with_options(f, (1 - x) * (g @ w) + x * f[f"sub_{a[0]}"]))
    if name == "O":
        return score(f, "T") + subject_gain(f)
    if name == "Oonly":
        return subject_gain(f) + 1e-3 * score(f, "T")
    if name == "within":
        t = score(f, "T")
        return t - subject_mean(f, t)
    raise ValueError(c)


def subject_mean(f: Dump, t: np.ndarray) -> np.ndarray:
    sj = np.unique(f["subjects"], return_inverse=True)[1]
    return (np.bincount(sj, t) / np.bincount(sj))[sj]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxies", default="p11,p12,p13,lobo,indomain")
    ap.add_argument("--candidates", default="T,D")
    ap.add_argument("--dumps", type=Path, default=Path("/tmp/transfer18"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/transfer19"))
    args = ap.parse_args()
    if any(p not in ("p11", "p12", "p13", "lobo", "indomain") for p in args.proxies.split(",")):
        raise SystemExit("spent splits only (P11–P13, LOBO, in-domain): P14 is read only after a registration")
    cands = ["T", *[c for c in args.candidates.split(",") if c and c != "T"]]
    args.cache.mkdir(parents=True, exist_ok=True)
    for proxy in args.proxies.split(","):
        files = load(args.dumps, proxy, args.cache, any(c.startswith(("len", "sub")) for c in cands))
        table_row(proxy, files, cands, score)


def table_row(proxy: str, files: dict[str, Any], cands: list[str], scorer: Any) -> None:
    """One proxy's row: each candidate's mean APGR over its folds (in-domain: per benchmark), its paired lead over T
    and the lowest fold's lead (also rounds 20's table)."""
    if proxy == "indomain":
        groups = {n: [files[k] for k in sorted(files) if k.startswith(n + "-")] for n in ("mmlu", "gsm8k")}
    else:
        groups = {k: [f] for k, f in files.items()}
    res: dict[str, list[float]] = {c: [] for c in cands}
    for fs in groups.values():
        strong = np.concatenate([f["strong"] for f in fs])
        weak = np.concatenate([f["weak"] for f in fs])
        for c in cands:
            res[c].append(apgr(routing_curve(np.concatenate([scorer(f, c) for f in fs]), strong, weak)))
    t = np.array(res["T"])
    print(f"| {proxy} ({len(groups)}) | " + " | ".join(
        f"{c} {np.mean(v):.3f} ({np.mean(np.array(v) - t):+.3f}, low {np.min(np.array(v) - t):+.3f})"
        for c, v in res.items()) + " |", flush=True)


if __name__ == "__main__":
    main()
