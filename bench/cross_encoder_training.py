"""Training the cross-encoder verifier (cross_encoder_model.py) on labelled question pairs, for
bench/cache_quality_cross.py.

Each question runs once through MiniLM's first `split` layers (its hidden states there are the
training input, as they are the index's at request time); only the joint layers' adapters, their
layer norms and the head are trained. Pairs are split by question (verifier_training.fold_of);
one part picks the epoch and calibrates the thresholds. Needs torch (the `embeddings` extra).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from cross_encoder_model import (
    ADAPTED,
    FORMAT,
    MAX_TOKENS,
    CrossVerifier,
    base_layers,
    join,
    joint_forward,
    pool_pair,
)

from tierwise.cache.verifier_training import FHRS, PairData, hit_rate_at

LORA_SCALE = 2.0
SPLIT = 5  # MiniLM layers each question reads alone; the last one reads both



# ---------------------------------------------------------------------------- the model


def _modules(bert: Any, split: int, rank: int, hidden: int) -> tuple[list[dict[str, Any]], Any, Any]:
    """Trainable parts: per joint layer a LoRA path per adapted matrix and its two layer norms; the head."""
    import copy

    import torch
    from torch import nn

    class LoRA(nn.Module):
        def __init__(self, din: int, dout: int) -> None:
            super().__init__()
            self.a = nn.Parameter(torch.randn(rank, din) / math.sqrt(din))
            self.b = nn.Parameter(torch.zeros(dout, rank))

        def forward(self, x: Any) -> Any:
            return (x @ self.a.T) @ self.b.T * LORA_SCALE

    delta = []
    for base in base_layers(bert, split):
        dl: dict[str, Any] = {n: LoRA(base[n].weight.shape[1], base[n].weight.shape[0]) for n in ADAPTED}
        dl["ln1"], dl["ln2"] = copy.deepcopy(base["ln1"]), copy.deepcopy(base["ln2"])
        for p in (*dl["ln1"].parameters(), *dl["ln2"].parameters()):
            p.requires_grad_(True)
        delta.append(dl)
    d = int(bert.config.hidden_size)
    return delta, nn.Linear(3 * d, hidden), nn.Linear(hidden, 1)


def _lengths(d: PairData) -> np.ndarray:
    return np.minimum(np.diff(d.off), MAX_TOKENS)  # type: ignore[no-any-return]


def _length_batches(d: PairData, rows: np.ndarray, rng: np.random.Generator, size: int) -> list[np.ndarray]:
    """Shuffled batches of pairs of similar token lengths (little padding), in random order."""
    n = _lengths(d)
    key = n[d.a[rows]] + n[d.b[rows]] + rng.random(len(rows))  # random among equal lengths
    order = np.argsort(key)
    batches = [order[s:s + size] for s in range(0, len(order), size)]
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def score_pairs(model: CrossVerifier, d: PairData, rows: np.ndarray, bs: int = 64) -> np.ndarray:
    """The shipped inference path on pairs `rows`: P(same question)."""
    n = _lengths(d)
    order = np.argsort(n[d.a[rows]] + n[d.b[rows]], kind="stable")
    out = np.empty(len(rows), np.float64)
    for s in range(0, len(rows), bs):
        j = order[s:s + bs]
        out[j] = model.prob([d.tokens(int(i)) for i in d.a[rows[j]]], [d.tokens(int(i)) for i in d.b[rows[j]]])
    return out


def train(d: PairData, tr: np.ndarray, ca: np.ndarray, bert: Any, *, split: int, seed: int = 0, epochs: int = 2,
          rank: int = 8, hidden: int = 64, lr: float = 1e-3, batch: int = 32, max_train: int = 0,
          log: Callable[[str], None] = print) -> dict[str, np.ndarray]:
    """Fit the adapters and head on pairs `tr` (at most `max_train` of them, drawn at random, if set); pick
    the epoch and calibrate the thresholds on pairs `ca` (disjoint questions). Returns a model file's arrays."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if max_train and len(tr) > max_train:
        tr = np.sort(rng.choice(tr, max_train, replace=False))
    for p in bert.parameters():
        p.requires_grad_(False)
    layers = base_layers(bert, split)
    heads = int(bert.config.num_attention_heads)
    delta, hid, out = _modules(bert, split, rank, hidden)
    params = [p for dl in delta for m in dl.values() for p in m.parameters()] + [*hid.parameters(), *out.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = epochs * math.ceil(len(tr) / batch)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / (steps - warm))))
    drop = torch.nn.Dropout(0.1)
    y = torch.from_numpy(d.y.astype(np.float32))

    def arrays() -> dict[str, np.ndarray]:
        a: dict[str, np.ndarray] = {"split": np.array(split), "hidden": np.array(int(bert.config.hidden_size)),
                                    "lora_scale": np.array(LORA_SCALE, np.float32)}
        for i, dl in enumerate(delta):
            for n in ADAPTED:
                a[f"l{i}_{n}_a"], a[f"l{i}_{n}_b"] = dl[n].a.detach().numpy().copy(), dl[n].b.detach().numpy().copy()
            for ln in ("ln1", "ln2"):
                a[f"l{i}_{ln}_w"] = dl[ln].weight.detach().numpy().copy()
                a[f"l{i}_{ln}_b"] = dl[ln].bias.detach().numpy().copy()
        a |= {"w_hid": hid.weight.detach().numpy().T.copy(), "b_hid": hid.bias.detach().numpy().copy(),
              "w_out": out.weight.detach().numpy().T.copy(), "b_out": out.bias.detach().numpy().copy(),
              "fhr": np.array(FHRS), "thr": np.zeros(len(FHRS))}
        return {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in a.items()}

    best, best_arrays, best_p, t0, c0 = -1.0, None, None, time.time(), time.process_time()
    for ep in range(epochs):
        for m in (*[m for dl in delta for m in dl.values()], hid, out, drop):
            m.train()
        for bi, j in enumerate(_length_batches(d, tr, rng, batch)):
            rows = tr[j]
            x, ma, mb = join([d.tokens(int(i)) for i in d.a[rows]], [d.tokens(int(i)) for i in d.b[rows]])
            h = joint_forward(x, torch.cat([ma, mb], 1), layers, delta, heads)
            z = out(torch.tanh(hid(drop(pool_pair(h, ma, mb)))))[:, 0]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if bi % 200 == 199:
                log(f"  epoch {ep + 1}: {(bi + 1) * batch} pairs, loss {loss.item():.3f} ({time.time() - t0:.0f} s)")
        a = arrays()
        p = score_pairs(CrossVerifier({**a, "format": np.array(FORMAT)}, bert), d, ca)
        score = hit_rate_at(p, d.y[ca], 0.01)[0]
        log(f"  epoch {ep + 1}: calibration hit rate at 1% false hits {score:.1%} ({time.time() - t0:.0f} s, "
            f"{time.process_time() - c0:.0f} s CPU, {len(tr)} training pairs)")
        if score > best:
            best, best_arrays, best_p = score, a, p
    assert best_arrays is not None and best_p is not None
    best_arrays["thr"] = np.array([hit_rate_at(best_p, d.y[ca], f)[1] for f in FHRS], dtype=np.float64)
    return best_arrays
