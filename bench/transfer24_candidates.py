"""Issue 22, round 24: bank candidates read from `routers_transfer24.py`'s dumps (a saved library router per part).

Every candidate is streamed in the part's arrival order `default_rng(0).permutation(n)` from empty windows, as
`tierwise eval --placement window-tokens` does. The bank is the saved router's own (routers/bank.py: its training
questions on 64 principal axes of the static token vectors); only the label each bank row carries, the look-up's
k and temperature, and the weight change between candidates.

- `T`                the merged default (`window-tokens`, no bank term): the library's `place`.
- `KTW:<w>[:<k>:<temp>]`  T + the library's bank term at weight w (`placement_bank: w`), the library's `place`
                     with the saved bank, its look-up at the bank's saved k and temperature or the given ones.
- `KB:<w>:<label>[:<k>:<temp>]`  T + w × z_W(kt) × sd_W(raw), kt the softmax(cos / temp)-weighted mean label of the
                     k nearest bank rows (default 50, 0.05; the bank term's arithmetic, bench form). Labels:
                     `gain` (the bank's own: centred gain), `wf` (centred weak failure), `mix<a>` (gain + a × wf),
                     `subj<m>` (each row's *subject's* mean centred gain, shrunk towards its source's 0 as
                     sum / (n + m): a row carries its subject's level, not its own noisy outcome; GSM8K is one
                     subject, so its rows carry 0).
- `KS:<w>:<label>`   KB, but a request reads only the bank rows of the source most of its k nearest rows belong to.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from transfer22_candidates import _order, window_scaled

from tierwise.routers.window import stream_placed

ORDER_SEED = 0


def subject_labels(gain: np.ndarray, keys: np.ndarray, m: float) -> np.ndarray:
    """Each row's subject's summed gain over (its size + m): shrunk towards 0 (the gains are centred per source)."""
    _, inv, counts = np.unique(keys, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=np.asarray(gain, float))
    return np.asarray(sums[inv] / (counts[inv] + m), float)


def labels(f: dict[str, Any], name: str) -> np.ndarray:
    if name == "gain":
        return np.asarray(f["bank"].gains, float)
    if name == "wf":
        return np.asarray(f["train_wf"], float)
    if name.startswith("mix"):
        return np.asarray(f["bank"].gains, float) + float(name[3:]) * np.asarray(f["train_wf"], float)
    if name.startswith("subj"):
        keys = np.char.add(np.char.add(f["train_src"].astype(str), "|"), f["train_subj"].astype(str))
        return subject_labels(np.asarray(f["bank"].gains, float), keys, float(name[4:]))
    raise ValueError(name)


def _sims(f: dict[str, Any]) -> np.ndarray:
    if "_sims" not in f:
        b = f["bank"]
        q = np.asarray(f["tokens"], np.float32) @ b.proj
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        f["_sims"] = (q @ b._vectors32.T).astype(np.float32)
    return np.asarray(f["_sims"])


def bank_gain(f: dict[str, Any], label: str, k: int = 50, temp: float = 0.05, by_source: bool = False) -> np.ndarray:
    key = f"_kt_{label}_{k}_{temp}_{by_source}"
    if key in f:
        return np.asarray(f[key])
    sims = _sims(f)
    lab = labels(f, label)
    out = np.empty(len(sims))
    src = f["train_src"].astype(str)
    names, sidx = np.unique(src, return_inverse=True)
    for i, row in enumerate(sims):
        top = np.argpartition(-row, k - 1)[:k]
        if by_source:
            major = np.bincount(sidx[top], minlength=len(names)).argmax()
            rows = np.flatnonzero(sidx == major)
            kk = min(k, len(rows))
            top = rows[np.argpartition(-row[rows], kk - 1)[:kk]]
        ss = row[top].astype(np.float64)
        w = np.exp((ss - ss.max()) / temp)
        out[i] = w @ lab[top] / w.sum()
    f[key] = out
    return out


def scores(f: dict[str, Any], c: str) -> np.ndarray:
    from tierwise.routers.placement import place

    s = np.asarray(f["s_D"], float)
    v = np.asarray(f["tokens"], np.float32)
    idx = list(range(len(s)))
    head, *arg = c.split(":")
    if c == "D":
        return s
    if c == "T":
        return place(s, idx, "window-tokens", lambda _: v, ORDER_SEED)
    if head == "KTW":  # `KTW:<w>[:<k>:<temp>]`: the saved bank, its look-up set to k and temp when given
        bank = f["bank"]
        if len(arg) > 1:
            bank = copy.copy(bank)
            bank.k, bank.temperature = int(arg[1]), float(arg[2])
        return place(s, idx, "window-tokens", lambda _: v, ORDER_SEED, bank=bank, bank_weight=float(arg[0]))
    if head in ("KB", "KS"):
        k = int(arg[2]) if len(arg) > 2 else 50
        temp = float(arg[3]) if len(arg) > 3 else 0.05
        kt = bank_gain(f, arg[1], k, temp, by_source=head == "KS")
        return stream_placed(s, v, ORDER_SEED) + float(arg[0]) * window_scaled(kt, s)
    raise ValueError(c)


__all__ = ["scores", "bank_gain", "labels", "subject_labels", "_order"]
