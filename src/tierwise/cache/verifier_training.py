"""Training the semantic tier's verifier (pair_model.py) on labelled question pairs, and the
figures that say how well it does: used by `tierwise cache train-verifier` (a user's own pairs)
and by `bench/cache_quality.py` (the shared Quora sample, and the shipped default model).

Pairs are split by connected components of the question graph, so no question is in two parts:
a model is judged only on questions it never saw. One part calibrates the decision thresholds
(for a few false-hit rates) and picks the training epoch; the rest trains. The weights go to an
`.npz` of plain arrays. Needs torch (the `embeddings` extra) at training time only.

Definitions used throughout: hit rate = pairs served / all pairs; false-hit rate = served pairs
that are not duplicates / all pairs (the share of requests that get a wrong answer).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tierwise.cache.pair_features import HAND_NAMES, fit_idf
from tierwise.cache.pair_model import MAX_TOKENS, PairModel, side_vector, unit_outputs

FHRS = (0.005, 0.01, 0.02, 0.05)
MAX_PAIRS = 2_000_000
MAX_TEXT_CHARS = 2000


@dataclass
class PairData:
    """Distinct texts with their embeddings, and the pairs as indices into them."""

    texts: list[str]
    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    sent: np.ndarray  # [n_texts, d] unit sentence embeddings
    tok: np.ndarray  # [sum of tokens, d] unit token vectors (float16), text i at off[i]:off[i+1]
    off: np.ndarray

    def tokens(self, i: int) -> np.ndarray:
        return self.tok[self.off[i]:min(self.off[i + 1], self.off[i] + MAX_TOKENS)]


def read_pairs(path: str | Path) -> list[tuple[str, str, int]]:
    """{text_a, text_b, label} per line (label 1: same question); bounded and checked."""
    from tierwise.jsonl_lines import jsonl_lines

    out: list[tuple[str, str, int]] = []
    for n, r in jsonl_lines(path):  # a BOM, CRLF and blank lines are fine; other encodings name their line
        if len(out) >= MAX_PAIRS:
            raise ValueError(f"{path}: more than {MAX_PAIRS} pairs")
        try:
            a, b, y = r["text_a"], r["text_b"], int(r["label"])
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: expected {{text_a, text_b, label}} ({type(e).__name__})") from None
        if not isinstance(a, str) or not isinstance(b, str) or y not in (0, 1) or not a or not b:
            raise ValueError(f"{path}:{n}: text_a/text_b must be non-empty strings and label 0 or 1")
        out.append((a[:MAX_TEXT_CHARS], b[:MAX_TEXT_CHARS], y))
    if len(out) < 200 or len({p[2] for p in out}) < 2:
        raise ValueError(f"{path}: need at least 200 pairs with both labels")
    return out


def encode(texts: Sequence[str], model: Any, batch_size: int = 128,
           progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sentence embeddings and unit token vectors of `texts` with a SentenceTransformer, one pass."""
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths batch with little padding
    sent: np.ndarray | None = None
    toks: list[np.ndarray | None] = [None] * len(texts)
    for s in range(0, len(texts), batch_size):
        idx = order[s:s + batch_size]
        outs = model.encode([texts[i] for i in idx], output_value=None, batch_size=batch_size,
                            show_progress_bar=False)
        for i, o in zip(idx, outs, strict=True):
            se, toks[i] = unit_outputs(o)
            if sent is None:
                sent = np.zeros((len(texts), len(se)), np.float32)
            sent[i] = se
        if progress is not None:
            progress(min(s + batch_size, len(texts)))
    lens = np.array([len(t) for t in toks])  # type: ignore[arg-type]
    off = np.concatenate([[0], np.cumsum(lens)])
    assert sent is not None
    return sent, np.concatenate(toks).astype(np.float16), off  # type: ignore[arg-type]


def pair_data(pairs: Sequence[tuple[str, str, int]], enc: Callable[[list[str]], tuple[np.ndarray, ...]]) -> PairData:
    texts = sorted({p[0] for p in pairs} | {p[1] for p in pairs})
    idx = {t: i for i, t in enumerate(texts)}
    sent, tok, off = enc(texts)
    return PairData(texts, np.array([idx[p[0]] for p in pairs]), np.array([idx[p[1]] for p in pairs]),
                    np.array([p[2] for p in pairs]), sent, tok, off)


# ---------------------------------------------------------------------------- splits and curves


def components(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """The connected component of each pair in the graph whose edges are the pairs."""
    parent = np.arange(n)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return int(x)

    for x, y in zip(a, b, strict=True):
        rx, ry = find(int(x)), find(int(y))
        if rx != ry:
            parent[rx] = ry
    return np.array([find(int(x)) for x in a])


def fold_of(d: PairData, k: int, seed: int) -> np.ndarray:
    """Each pair's fold 0..k-1, whole components at a time."""
    comp = components(d.a, d.b, len(d.texts))
    uniq = np.unique(comp)
    np.random.default_rng(seed).shuffle(uniq)
    f = {c: i % k for i, c in enumerate(uniq)}
    return np.array([f[c] for c in comp])


def curve(score: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(threshold, hit rate, false-hit rate) at every cut-off, best score first."""
    order = np.argsort(-score, kind="stable")
    s, y = score[order], label[order]
    served = np.arange(1, len(s) + 1)
    return s, served / len(s), np.cumsum(1 - y) / len(s)


def hit_rate_at(score: np.ndarray, label: np.ndarray, fhr: float) -> tuple[float, float]:
    """The largest hit rate whose false-hit rate is <= fhr, and the threshold that gives it."""
    thr, hr, fr = curve(score, label)
    ok = np.where(fr <= fhr)[0]
    if len(ok) == 0:
        return 0.0, float("inf")
    i = ok[-1]
    while i + 1 < len(thr) and thr[i + 1] == thr[i]:  # a threshold serves every pair with its score
        i -= 1
        if i < 0:
            return 0.0, float("inf")
    return float(hr[i]), float(thr[i])


def at_threshold(score: np.ndarray, label: np.ndarray, t: float) -> tuple[float, float]:
    served = score >= t
    return float(served.mean()), float((served & (label == 0)).sum()) / len(score)


# ---------------------------------------------------------------------------- features and model


def side_matrix(d: PairData, rows: np.ndarray, idf: np.ndarray) -> np.ndarray:
    """The side input (pair_model.side_vector) of the pairs `rows`, unscaled."""
    out = np.empty((len(rows), len(HAND_NAMES) + 4 + 2 * d.sent.shape[1]), np.float32)
    for j, r in enumerate(rows):
        i, k = int(d.a[r]), int(d.b[r])
        out[j] = side_vector(d.texts[i], d.texts[k], d.sent[i], d.sent[k], d.tokens(i).astype(np.float32),
                             d.tokens(k).astype(np.float32), idf)
    return out


def _net(dim: int, n_side: int, h: int, g: int, k: int) -> Any:
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.att, self.proj = nn.Linear(dim, h), nn.Linear(dim, h)
            self.cmp = nn.Linear(4 * h, g)
            self.hid = nn.Linear(6 * g + n_side, k)
            self.out = nn.Linear(k, 1)
            self.drop = nn.Dropout(0.1)

        def pool(self, pa: Any, pb: Any, att: Any, m: Any) -> Any:
            al = att @ pb
            x = torch.relu(self.cmp(torch.cat([pa, al, pa * al, (pa - al).abs()], -1))) * m[..., None]
            return torch.cat([x.sum(1) / m.sum(1, keepdim=True), x.max(1).values], -1)

        def forward(self, a: Any, ma: Any, b: Any, mb: Any, side: Any) -> Any:
            fa, fb = torch.relu(self.att(a)), torch.relu(self.att(b))
            pa, pb = self.proj(a), self.proj(b)
            e = fa @ fb.transpose(1, 2)
            att_ab = torch.softmax(e.masked_fill(mb[:, None, :] == 0, -1e9), -1)
            att_ba = torch.softmax(e.transpose(1, 2).masked_fill(ma[:, None, :] == 0, -1e9), -1)
            v1, v2 = self.pool(pa, pb, att_ab, ma), self.pool(pb, pa, att_ba, mb)
            x = torch.relu(self.hid(self.drop(torch.cat([v1 + v2, (v1 - v2).abs(), v1 * v2, side], -1))))
            return self.out(self.drop(x)).squeeze(-1)

    return Net()


def _batch(d: PairData, rows: np.ndarray, side: np.ndarray) -> tuple[Any, ...]:
    import torch

    def pad(ids: np.ndarray) -> tuple[Any, Any]:
        mats = [d.tokens(int(i)) for i in ids]
        n = max(len(m) for m in mats)
        x = np.zeros((len(mats), n, d.tok.shape[1]), np.float32)
        m = np.zeros((len(mats), n), np.float32)
        for j, t in enumerate(mats):
            x[j, :len(t)] = t
            m[j, :len(t)] = 1
        return torch.from_numpy(x), torch.from_numpy(m)

    a, ma = pad(d.a[rows])
    b, mb = pad(d.b[rows])
    return a, ma, b, mb, torch.from_numpy(side)


def _predict(net: Any, d: PairData, rows: np.ndarray, side: np.ndarray, bs: int = 512) -> np.ndarray:
    import torch

    net.eval()
    n = np.minimum(np.diff(d.off), MAX_TOKENS)
    order = np.argsort(np.maximum(n[d.a[rows]], n[d.b[rows]]), kind="stable")  # little padding per batch
    out = np.empty(len(rows), np.float32)
    with torch.no_grad():
        for s in range(0, len(rows), bs):
            j = order[s:s + bs]
            out[j] = net(*_batch(d, rows[j], side[j])).numpy()
    return out


def _length_batches(d: PairData, rows: np.ndarray, rng: np.random.Generator, size: int = 128) -> list[np.ndarray]:
    """Shuffled batches of pairs of similar token lengths (little padding), in random order."""
    n = np.minimum(np.diff(d.off), MAX_TOKENS)
    key = np.maximum(n[d.a[rows]], n[d.b[rows]]) + rng.random(len(rows))  # random among equal lengths
    order = np.argsort(key)
    batches = [order[s:s + size] for s in range(0, len(order), size)]
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def train(d: PairData, tr: np.ndarray, ca: np.ndarray, *, seed: int = 0, epochs: int = 14, h: int = 96,
          g: int = 96, k: int = 64, log: Callable[[str], None] = print) -> dict[str, np.ndarray]:
    """Fit on pairs `tr`; pick the epoch and calibrate the thresholds on pairs `ca` (disjoint questions).
    Returns the arrays of a PairModel file."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    idf = fit_idf([d.texts[i] for i in sorted(set(d.a[tr].tolist()) | set(d.b[tr].tolist()))])
    s_tr, s_ca = side_matrix(d, tr, idf), side_matrix(d, ca, idf)
    mean, scale = s_tr.mean(0), s_tr.std(0) + 1e-6
    s_tr, s_ca = (s_tr - mean) / scale, (s_ca - mean) / scale
    net = _net(d.tok.shape[1], s_tr.shape[1], h, g, k)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    y = torch.from_numpy(d.y.astype(np.float32))
    best, best_state, t0 = -1.0, None, time.time()
    for ep in range(epochs):
        net.train()
        for j in _length_batches(d, tr, rng):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(*_batch(d, tr[j], s_tr[j])), y[tr[j]])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        p = _predict(net, d, ca, s_ca)
        score = hit_rate_at(p, d.y[ca], 0.01)[0]
        log(f"  epoch {ep + 1}: calibration hit rate at 1% false hits {score:.1%} ({time.time() - t0:.0f} s)")
        if score > best:
            best, best_state = score, {n: v.detach().clone() for n, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    p = _predict(net, d, ca, s_ca)
    sd = {n: v.numpy().astype(np.float32) for n, v in net.state_dict().items()}
    arrays = {"w_att": sd["att.weight"].T, "b_att": sd["att.bias"], "w_proj": sd["proj.weight"].T,
              "b_proj": sd["proj.bias"], "w_cmp": sd["cmp.weight"].T, "b_cmp": sd["cmp.bias"],
              "w_hid": sd["hid.weight"].T, "b_hid": sd["hid.bias"], "w_out": sd["out.weight"].T,
              "b_out": sd["out.bias"], "hand_mean": mean.astype(np.float32), "hand_scale": scale.astype(np.float32),
              "idf": idf, "fhr": np.array(FHRS)}
    # thresholds on probabilities, like PairModel.prob gives them
    prob = 1.0 / (1.0 + np.exp(-p.astype(np.float64)))
    arrays["thr"] = np.array([hit_rate_at(prob, d.y[ca], f)[1] for f in FHRS], dtype=np.float64)
    return {k2: np.asarray(v) for k2, v in arrays.items()}


def score_pairs(model: PairModel, d: PairData, rows: np.ndarray) -> np.ndarray:
    """The shipped inference path (numpy) on pairs `rows`."""
    return model.prob([d.texts[int(i)] for i in d.a[rows]], [d.texts[int(i)] for i in d.b[rows]],
                      d.sent[d.a[rows]], d.sent[d.b[rows]], [d.tokens(int(i)) for i in d.a[rows]],
                      [d.tokens(int(i)) for i in d.b[rows]])
