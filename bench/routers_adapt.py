"""Adapting a transferred router on the user's own judged traffic (issue 22, session 25): on each unseen-domain
fold (bench/routers_adapt_prep.py), the traffic arrives in a random order; the first N questions are judged shadow
pairs (both tiers' outcomes known, as the `learned` route's online validation gets them), and the route's APGR is
measured on the REST of the fold, adapted or not.

Methods (every one sees only the N live pairs' outcomes, their prior scores and their vectors):
- `prior`: the transferred router unadapted.
- `live`: the similarity-weighted gain (strong − weak) of the K nearest live pairs (cosine in the route's LSA
  space, weights exp((s − s_max) / T), as `knn-wf`), alone.
- `blend:N0`: the prior's rank and the live-neighbour gain's rank (each among the live pairs' own values; the live
  pairs' neighbour values leave the pair itself out), averaged with the weight λ = N / (N + N0) on the live side.
- `stack`: ridge regression of the live pairs' gain on [prior rank, live-neighbour gain, live-neighbour weak
  failure] (leave-one-out neighbour values), standardised on the live pairs, alpha = ALPHA.

Intervals: a two-level bootstrap — each resample draws, per fold, one of the R orders and a resample of that
order's remaining questions; a method's APGR and its paired lead over `prior` are recomputed on it; the mean over
folds resamples every fold.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/routers_adapt.py --dir /tmp/adapt --proxies category \\
        --methods prior,live,blend:100,blend:300,stack --budgets 50,100,200,500 --orders 20 --ci 300
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tierwise.evaluation.metrics import NUM_BINS, _apgr_rows, apgr, bootstrap_apgr, routing_curve

K = 20
TEMPERATURE = 0.05
ALPHA = 10.0


def rank_among(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Mid-rank of each x among ref (0..1)."""
    ref = np.sort(ref)
    lo = np.searchsorted(ref, x, side="left")
    hi = np.searchsorted(ref, x, side="right")
    return (lo + hi) / (2.0 * len(ref))


def neighbour_labels(q: np.ndarray, bank: np.ndarray, labels: np.ndarray, *, leave_self: bool = False,
                     k: int = K, temperature: float = TEMPERATURE) -> np.ndarray:
    """Similarity-weighted mean of `labels` (columns) over the K nearest bank rows of each q row."""
    sims = q @ bank.T
    if leave_self:
        np.fill_diagonal(sims, -np.inf)
    k = min(k, bank.shape[0] - (1 if leave_self else 0))
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    ss = np.take_along_axis(sims, top, axis=1)
    w = np.exp((ss - ss.max(axis=1, keepdims=True)) / temperature)
    w /= w.sum(axis=1, keepdims=True)
    return np.einsum("ik,ikj->ij", w, labels[top])


def adapt(method: str, live: np.ndarray, rest: np.ndarray, f) -> np.ndarray:
    prior, vec = f["prior"], f["lsa"]
    if method == "prior":
        return prior[rest]
    if method == "indomain":
        return f["indomain"][rest]
    n = len(live)
    lab = np.stack([f["strong"][live] - f["weak"][live], 1.0 - f["weak"][live]], axis=1)
    parts = method.split(":")
    kk, tt = (int(parts[2]), float(parts[3])) if method.startswith("blend") and len(parts) == 4 else (K, TEMPERATURE)
    nb_rest = neighbour_labels(vec[rest], vec[live], lab, k=kk, temperature=tt)
    if method == "live":
        return nb_rest[:, 0] + 1e-6 * rank_among(prior[rest], prior[live])  # ties broken by the prior
    nb_live = neighbour_labels(vec[live], vec[live], lab, leave_self=True, k=kk, temperature=tt)
    if method.startswith("blend"):
        n0 = float(parts[1])
        lam = n / (n + n0)
        return (1 - lam) * rank_among(prior[rest], prior[live]) + lam * rank_among(nb_rest[:, 0], nb_live[:, 0])
    if method == "stack":
        x_live = np.column_stack([rank_among(prior[live], prior[live]), nb_live])
        x_rest = np.column_stack([rank_among(prior[rest], prior[live]), nb_rest])
        mu, sd = x_live.mean(axis=0), x_live.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        z_live, z_rest = (x_live - mu) / sd, (x_rest - mu) / sd
        y = lab[:, 0] - lab[:, 0].mean()
        coef = np.linalg.solve(z_live.T @ z_live + ALPHA * np.eye(z_live.shape[1]), z_live.T @ y)
        return z_rest @ coef
    if method.startswith("ridge"):  # ridge of the gain on the LSA vector, blended with the prior by rank
        _, alpha, n0 = method.split(":")
        y = lab[:, 0] - lab[:, 0].mean()
        x = vec[live]
        coef = np.linalg.solve(x.T @ x + float(alpha) * np.eye(x.shape[1]), x.T @ y)
        fit_live, fit_rest = x @ coef, vec[rest] @ coef
        lam = n / (n + float(n0))
        return (1 - lam) * rank_among(prior[rest], prior[live]) + lam * rank_among(fit_rest, fit_live)
    if method.startswith("tfidf"):  # ridge of the gain on hashed TF-IDF of the live prompts, blended by rank
        from sklearn.linear_model import Ridge

        from tierwise.routers.features import HashingTfidf

        _, alpha, n0 = method.split(":")
        prompts = f["prompts"]
        tf = HashingTfidf(1 << 16).fit([prompts[i] for i in live])
        xl, xr = tf.matrix([prompts[i] for i in live]), tf.matrix([prompts[i] for i in rest])
        r = Ridge(alpha=float(alpha)).fit(xl, lab[:, 0])
        lam = n / (n + float(n0))
        ref = r.predict(xl)
        if method.startswith("tfidf-oof"):  # the live side ranked among 5-fold out-of-fold predictions
            ref = np.zeros(n)
            for k in range(5):
                te = np.arange(n) % 5 == k
                ref[te] = Ridge(alpha=float(alpha)).fit(xl[~te], lab[~te, 0]).predict(xl[te])
        return (1 - lam) * rank_among(prior[rest], prior[live]) + lam * rank_among(r.predict(xr), ref)
    raise ValueError(method)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=Path("/tmp/adapt"))
    ap.add_argument("--proxies", default="category")
    ap.add_argument("--methods", default="prior,live,blend:100,blend:300,stack")
    ap.add_argument("--budgets", default="50,100,200,500")
    ap.add_argument("--orders", type=int, default=20)
    ap.add_argument("--ci", type=int, default=300)
    ap.add_argument("--against", default="prior")
    args = ap.parse_args()
    methods = args.methods.split(",")
    for proxy in args.proxies.split(","):
        files = sorted(args.dir.glob(f"{proxy}--*.npz"))
        folds = {p.stem.split("--", 1)[1]: dict(np.load(p)) for p in files}
        if any(m.startswith("tfidf") for m in methods):
            from routers_adapt_prep import folds as fold_data

            for part, test, _ in fold_data(proxy):
                if part in folds:
                    folds[part]["prompts"] = list(test.prompts)
        names = list(folds)
        sizes = ", ".join(f"{k} ({len(v['prior'])})" for k, v in folds.items())
        print(f"\n#### {proxy}: {sizes}\n")
        # reference rows on the whole fold
        for ref in ("prior", "indomain"):
            cells = []
            for k in names:
                f = folds[k]
                a = apgr(routing_curve(f[ref], f["strong"], f["weak"]))
                ci = bootstrap_apgr(f[ref], f["strong"], f["weak"], rounds=args.ci)
                cells.append(f"{a:.3f} ({ci.low:.3f}–{ci.high:.3f})")
            print(f"- whole fold, {ref}: " + "; ".join(f"{k} {c}" for k, c in zip(names, cells, strict=True)))
        print()
        print("| N judged | method | " + " | ".join(names) + " | mean (95%) | lead over " + args.against + " (95%) |")
        print("|---|---|" + "---|" * (len(names) + 2))
        for n in [int(x) for x in args.budgets.split(",")]:
            rng = np.random.default_rng(n)
            # per fold, per order: the rest's indices and every method's scores on it
            per: dict[str, list[tuple[np.ndarray, dict[str, np.ndarray]]]] = {}
            for k in names:
                f = folds[k]
                m = len(f["prior"])
                per[k] = []
                for _ in range(args.orders):
                    order = rng.permutation(m)
                    live, rest = order[:n], order[n:]
                    per[k].append((rest, {meth: adapt(meth, live, rest, f) for meth in methods}))
            # point estimates: mean over orders per fold
            point = {meth: {k: float(np.mean([apgr(routing_curve(s[meth], folds[k]["strong"][r], folds[k]["weak"][r]))
                                              for r, s in per[k]])) for k in names} for meth in methods}
            # two-level bootstrap
            boot = {meth: np.zeros((args.ci, len(names))) for meth in methods}
            brng = np.random.default_rng(1000 + n)
            for j, k in enumerate(names):
                f = folds[k]
                pick = brng.integers(0, args.orders, size=args.ci)
                for o in np.unique(pick):
                    rows = np.flatnonzero(pick == o)
                    rest, scores = per[k][o]
                    ix = brng.integers(0, len(rest), size=(len(rows), len(rest)))
                    st, wk = f["strong"][rest][ix], f["weak"][rest][ix]
                    for meth in methods:
                        boot[meth][rows, j] = _apgr_rows(scores[meth][ix], st, wk, NUM_BINS)
            for meth in methods:
                cells = []
                for j, k in enumerate(names):
                    v = boot[meth][:, j]
                    lead = v - boot[args.against][:, j]
                    cells.append(f"{point[meth][k]:.3f} ({np.nanquantile(v, 0.025):.3f}–{np.nanquantile(v, 0.975):.3f})"
                                 + ("" if meth == args.against else
                                    f" [{point[meth][k] - point[args.against][k]:+.3f}, {np.nanquantile(lead, 0.025):+.3f}…"
                                    f"{np.nanquantile(lead, 0.975):+.3f}]"))
                mean = np.nanmean(boot[meth], axis=1)
                lead = mean - np.nanmean(boot[args.against], axis=1)
                pm = np.mean(list(point[meth].values()))
                pl = pm - np.mean(list(point[args.against].values()))
                print(f"| {n} | {meth} | " + " | ".join(cells) + f" | {pm:.3f} ({np.quantile(mean, 0.025):.3f}–"
                      f"{np.quantile(mean, 0.975):.3f}) | {pl:+.3f} ({np.quantile(lead, 0.025):+.3f}…"
                      f"{np.quantile(lead, 0.975):+.3f}) |", flush=True)


if __name__ == "__main__":
    main()
