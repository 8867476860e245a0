"""Issue 22, round 22: the candidates read from `routers_transfer22.py`'s dumps.

Every candidate but `D` and the batch forms is streamed in each part's arrival order `default_rng(0).permutation(n)`
from an empty window of 1,000 requests, neighbours by cosine of the router's static token vectors (`tokens`),
k 20, as the merged default `T` (`window-tokens`) does. Notation: shift_N(x) = mean of x over the request's k nearest
past requests in the window − mean of x over the window (0 with fewer than k in the window).

- `T`            D + shift_N(D's raw score): the merged default.
- `LP:<g>[:<k>]` online label propagation: the window keeps, for each past request, its raw score + g × its own
                 shift (its partly placed score) instead of the raw score; a request's placed score is D + shift_N of
                 those. g 0 = T; g > 0 lets each neighbour carry its own neighbourhood's evidence (two hops, three…,
                 geometric in g), so a subject's level is read from more of its past questions than the k nearest.
- `MP:<j>:<w>`   T + w × shift_N(member j's rank): j 0 weak-only (the weak-fails member), 1 TF-IDF gain, 2 shape gain,
                 o the options member's quantile. The neighbourhood mean of one member, not of the blend.
- `BK:<k>`       batch (what `tierwise eval` has, not a route): D + (mean of D over the k nearest in the whole part,
                 itself out) − the part's mean.
- `BLP:<a>`      batch label propagation (Zhou et al. 2004) over the whole part's symmetric kNN graph (k 20):
                 F = (1 − a)(I − a S)^-1 (D − mean D); placed = D + F (the propagated centred score).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tierwise.routers.window import SIZE, K, stream_placed

ORDER_SEED = 0


def _order(n: int) -> np.ndarray:
    return np.random.default_rng(ORDER_SEED).permutation(n)


def neighbour_shifts(vecs: np.ndarray, cols: np.ndarray, size: int = SIZE, k: int = K) -> np.ndarray:
    """shift_N of each column of `cols` (n × m) for each request, streamed in the arrival order (input order out)."""
    n, m = cols.shape
    out = np.zeros((n, m))
    win_v = np.zeros((size, vecs.shape[1]), np.float32)
    win_c = np.zeros((size, m))
    held, pos = 0, 0
    for i in _order(n):
        if held >= k:
            sims = win_v[:held] @ vecs[i]
            near = np.argpartition(sims, held - k)[held - k:]
            out[i] = win_c[near].mean(axis=0) - win_c[:held].mean(axis=0)
        win_v[pos], win_c[pos] = vecs[i], cols[i]
        pos = (pos + 1) % size
        held = min(held + 1, size)
    return out


def shifts_and_sims(vecs: np.ndarray, s: np.ndarray, size: int = SIZE, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """T's shift of each request and the mean cosine of its k nearest past requests (0 with fewer than k)."""
    n = len(s)
    sh, sim = np.zeros(n), np.zeros(n)
    win_v = np.zeros((size, vecs.shape[1]), np.float32)
    win_s = np.zeros(size)
    held, pos = 0, 0
    for i in _order(n):
        if held >= k:
            sims = win_v[:held] @ vecs[i]
            near = np.argpartition(sims, held - k)[held - k:]
            sh[i], sim[i] = win_s[near].mean() - win_s[:held].mean(), sims[near].mean()
        win_v[pos], win_s[pos] = vecs[i], s[i]
        pos = (pos + 1) % size
        held = min(held + 1, size)
    return sh, sim


def propagated(vecs: np.ndarray, s: np.ndarray, g: float, size: int = SIZE, k: int = K) -> np.ndarray:
    """`LP:g`: each request kept in the window as raw + g × its own shift; placed = raw + shift of the kept values."""
    n = len(s)
    out = s.astype(float).copy()
    win_v = np.zeros((size, vecs.shape[1]), np.float32)
    win_x = np.zeros(size)
    held, pos = 0, 0
    for i in _order(n):
        shift = 0.0
        if held >= k:
            sims = win_v[:held] @ vecs[i]
            near = np.argpartition(sims, held - k)[held - k:]
            shift = float(win_x[near].mean() - win_x[:held].mean())
        out[i] = s[i] + shift
        win_v[pos], win_x[pos] = vecs[i], s[i] + g * shift
        pos = (pos + 1) % size
        held = min(held + 1, size)
    return out


def _knn_graph(vecs: np.ndarray, k: int) -> np.ndarray:
    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -np.inf)
    near = np.argpartition(sims, -k, axis=1)[:, -k:]
    w = np.zeros_like(sims, dtype=float)
    rows = np.repeat(np.arange(len(vecs)), k)
    w[rows, near.ravel()] = 1.0
    return w


def batch_knn(vecs: np.ndarray, s: np.ndarray, k: int) -> np.ndarray:
    w = _knn_graph(vecs, k)
    return s + w @ s / k - s.mean()


def batch_lp(vecs: np.ndarray, s: np.ndarray, a: float, k: int = K) -> np.ndarray:
    w = _knn_graph(vecs, k)
    w = np.maximum(w, w.T)
    d = 1.0 / np.sqrt(w.sum(axis=1))
    sym = w * d[:, None] * d[None, :]
    y = s - s.mean()
    f = (1 - a) * np.linalg.solve(np.eye(len(s)) - a * sym, y)
    return s + f


KT_K, KT_TEMPERATURE = 50, 0.05  # as the `knn-wf` member (routers/transfer.py K, TEMPERATURE)


BANK_SEED = 0


def bank_labels(f: dict[str, Any], label: str, rows: int = 0) -> np.ndarray:
    """Similarity-weighted mean label (`gain`, `wf`, `only`) of each request's KT_K nearest training questions."""
    key = f"_kt_{label}_{rows}"
    if key not in f:
        bank = np.asarray(f["bank_tv"], dtype=np.float32)
        lab = np.asarray(f[f"bank_{label}"], dtype=float)
        q = np.asarray(f["tokens"], dtype=np.float32)
        if rows < 0:  # the bank and the queries projected on the bank's top -rows principal axes, re-normalised
            _, _, vt = np.linalg.svd(bank - bank.mean(axis=0), full_matrices=False)
            proj = vt[:-rows].T.astype(np.float32)
            bank, q = bank @ proj, q @ proj
            bank /= np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-12)
            q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        elif rows and rows < len(bank):  # a seeded sample of the training rows (what fits a decision's budget)
            keep = np.sort(np.random.default_rng(BANK_SEED).choice(len(bank), rows, replace=False))
            bank, lab = bank[keep], lab[keep]
        out = np.empty(len(q))
        for a in range(0, len(q), 512):
            sims = q[a:a + 512] @ bank.T
            top = np.argpartition(-sims, KT_K - 1, axis=1)[:, :KT_K]
            ss = np.take_along_axis(sims, top, axis=1)
            w = np.exp((ss - ss.max(axis=1, keepdims=True)) / KT_TEMPERATURE)
            out[a:a + 512] = (w * lab[top]).sum(axis=1) / w.sum(axis=1)
        f[key] = out
    return np.asarray(f[key])


def window_scaled(x: np.ndarray, s: np.ndarray, size: int = SIZE, k: int = K) -> np.ndarray:
    """Each request's `x` less the mean of `x` over the window of past requests, in units of the window's spread of
    `x`, times the window's spread of `s` (0 while the window holds fewer than k); streamed in the arrival order."""
    n = len(s)
    out = np.zeros(n)
    wx, ws = np.zeros(size), np.zeros(size)
    held, pos = 0, 0
    for i in _order(n):
        if held >= k:
            sx = wx[:held].std()
            out[i] = (x[i] - wx[:held].mean()) / sx * ws[:held].std() if sx > 0 else 0.0
        wx[pos], ws[pos] = x[i], s[i]
        pos = (pos + 1) % size
        held = min(held + 1, size)
    return out


def _member(f: dict[str, Any], j: str) -> np.ndarray:
    return np.asarray(f["m_opt"] if j == "o" else f["m_rank"][:, int(j)], dtype=float)


def scores(f: dict[str, Any], c: str) -> np.ndarray:
    s = np.asarray(f["s_D"], dtype=float)
    v = np.asarray(f["tokens"], dtype=np.float32)
    head, *arg = c.split(":")
    if c == "T":
        return stream_placed(s, v, ORDER_SEED)
    if c == "D":
        return s
    if head == "LP":
        return propagated(v, s, float(arg[0]), k=int(arg[1]) if len(arg) > 1 else K)
    if head == "MP":
        cols = np.stack([s, _member(f, arg[0])], axis=1)
        sh = neighbour_shifts(v, cols)
        return s + sh[:, 0] + float(arg[1]) * sh[:, 1]
    if head == "BK":
        return batch_knn(v, s, int(arg[0]))
    if head == "BLP":
        return batch_lp(v, s, float(arg[0]))
    if head == "W":  # T with another window size, k or weight
        return stream_placed(s, v, ORDER_SEED, size=int(arg[0]), k=int(arg[1]), weight=float(arg[2]))
    if head == "CW":  # T's shift scaled by the neighbourhood's coherence (mean cosine of the k nearest), clipped
        sh, sim = shifts_and_sims(v, s)
        lo, hi = float(arg[0]), float(arg[1])
        return s + sh * np.clip((sim - lo) / (hi - lo), 0.0, 1.0)
    if head in ("KT", "KTN"):  # the neighbour label of the training bank: per request (KT) or its window mean (KTN)
        kt = bank_labels(f, arg[0])
        kt = (kt - kt.mean()) * (s.std() / max(kt.std(), 1e-12))  # on D's scale (a bench approximation)
        w = float(arg[1])
        if head == "KT":
            return stream_placed(s, v, ORDER_SEED) + w * kt
        sh = neighbour_shifts(v, np.stack([s, kt], axis=1))
        return s + sh[:, 0] + w * sh[:, 1]
    if head == "KTW":  # KT as a route could run it: kt z-scored on the window's past requests, on D's window spread
        kt = bank_labels(f, arg[1] if len(arg) > 1 else "gain", int(arg[2]) if len(arg) > 2 else 0)
        return stream_placed(s, v, ORDER_SEED) + float(arg[0]) * window_scaled(kt, s)
    if head == "SUB":  # oracle neighbourhoods: the past same-subject requests in the window (no route has subjects)
        return subject_window(f["subjects"], s, float(arg[0]) if arg else 1.0)
    if head == "SUBB":  # oracle, batch: D + its subject's mean of D over the whole part − the part's mean
        subj = f["subjects"]
        means = {u: s[subj == u].mean() for u in np.unique(subj)}
        return s + float(arg[0] if arg else 1) * (np.array([means[u] for u in subj]) - s.mean())
    raise ValueError(c)


def subject_window(subj: np.ndarray, s: np.ndarray, w: float, size: int = SIZE, k: int = K) -> np.ndarray:
    n = len(s)
    out = s.astype(float).copy()
    win_s, win_u = np.zeros(size), np.empty(size, dtype=subj.dtype)
    held, pos = 0, 0
    for i in _order(n):
        if held >= k:
            same = win_s[:held][win_u[:held] == subj[i]]
            if len(same):
                out[i] = s[i] + w * (same[-k:].mean() if len(same) >= k else same.mean()) - w * win_s[:held].mean()
        win_s[pos], win_u[pos] = s[i], subj[i]
        pos = (pos + 1) % size
        held = min(held + 1, size)
    return out
