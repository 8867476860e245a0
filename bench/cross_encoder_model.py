"""A cross-encoder verifier for the semantic tier (an experiment: bench/cache_quality_cross.py).

A cross-encoder cut in two. all-MiniLM-L6-v2 (the embedding model the tier loads anyway) reads
each question alone through its first `split` layers: that pass is the one that embeds the
question, so its hidden states there cost nothing extra and are kept in the index. The last
`6 - split` layers then read the two questions **together** (one sequence: every token of one
question attends to every token of the other), with small low-rank adapters (LoRA) on their
attention and feed-forward matrices trained on labelled pairs; each question's tokens are
mean-pooled and a small head decides from the two pools. This is "precomputed term
representations" (MacAvaney et al. 2020, PreTTR) on MiniLM: a cross-encoder whose first layers
are shared with the embedder. Nothing in the joint part tells the two questions apart except
their own (per-question) positions, and pooling is symmetric, so the score does not depend on
which question is the cached one.

The model file holds only the adapters, the layer norms of the joint layers, the head and the
thresholds calibrated for a few false-hit rates: one `.npz` of plain arrays (`allow_pickle=False`,
numbers only). The base weights come from the installed model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 3  # 1: MLP over sentence vectors; 2: decomposable attention over frozen token vectors
MAX_TOKENS = 40  # per question (so at most 80 per pair): longer questions are cut
ADAPTED = ("query", "value", "attn_out", "ffn_in", "ffn_out")
MAX_FILE_BYTES = 16 * 1024 * 1024


def encode_states(texts: Sequence[str], st: Any, split: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(unit sentence embedding, float16 hidden states after layer `split`, at most MAX_TOKENS) of each text,
    from one pass of a SentenceTransformer's MiniLM (mean pooling, as the sentence model does)."""
    import torch
    from torch.nn import functional as F

    bert, tok = st[0].auto_model, st.tokenizer
    enc = tok(list(texts), truncation=True, max_length=st.max_seq_length, padding=True, return_tensors="pt")
    with torch.inference_mode():
        out = bert(**enc, output_hidden_states=True)
    m = enc["attention_mask"]
    se = F.normalize((out.last_hidden_state * m[..., None]).sum(1) / m.sum(1, keepdim=True), dim=-1).numpy()
    hs = out.hidden_states[split]
    return [(se[j], hs[j, :min(int(m[j].sum()), MAX_TOKENS)].numpy().astype(np.float16)) for j in range(len(texts))]


def base_layers(bert: Any, split: int) -> list[dict[str, Any]]:
    """The base weights of MiniLM's layers split.. (tensors shared with the loaded model, not copied)."""
    out = []
    for layer in bert.encoder.layer[split:]:
        sa, ao = layer.attention.self, layer.attention.output
        out.append({"query": sa.query, "key": sa.key, "value": sa.value, "attn_out": ao.dense,
                    "ln1": ao.LayerNorm, "ffn_in": layer.intermediate.dense, "ffn_out": layer.output.dense,
                    "ln2": layer.output.LayerNorm})
    return out


def joint_forward(x: Any, mask: Any, layers: list[dict[str, Any]], delta: list[dict[str, Any]], heads: int) -> Any:
    """MiniLM's layers over the joined sequence x [B, T, d] (mask [B, T], 1 = token). `delta[i][name]`
    is added to a base matrix's output: a LoRA path while training, merged weights at inference."""
    import torch
    from torch.nn import functional as F

    bias = (1.0 - mask[:, None, None, :]) * -1e4
    b, t, d = x.shape
    for base, dl in zip(layers, delta, strict=True):
        def lin(name: str, h: Any, base: dict[str, Any] = base, dl: dict[str, Any] = dl) -> Any:
            out = F.linear(h, base[name].weight, base[name].bias)
            return out + dl[name](h) if name in dl else out

        def split_heads(h: Any) -> Any:
            return h.view(b, t, heads, d // heads).transpose(1, 2)

        q, k, v = split_heads(lin("query", x)), split_heads(lin("key", x)), split_heads(lin("value", x))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads) + bias, -1)
        ctx = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = dl["ln1"](x + lin("attn_out", ctx))
        x = dl["ln2"](x + lin("ffn_out", F.gelu(lin("ffn_in", x))))
    return x


def pool_pair(h: Any, ma: Any, mb: Any) -> Any:
    """Symmetric pair vector from the joint states h [B, Ta+Tb, d]: each question's mean, combined."""
    import torch

    ta = ma.shape[1]
    u = (h[:, :ta] * ma[..., None]).sum(1) / ma.sum(1, keepdim=True)
    v = (h[:, ta:] * mb[..., None]).sum(1) / mb.sum(1, keepdim=True)
    return torch.cat([u + v, (u - v).abs(), u * v], -1)


def join(ta: list[np.ndarray], tb: list[np.ndarray]) -> tuple[Any, Any, Any]:
    """Pad each side to its longest question and concatenate: (x [B, Ta+Tb, d], mask a, mask b)."""
    import torch

    def pad(mats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        n = max(len(m) for m in mats)
        x = np.zeros((len(mats), n, mats[0].shape[1]), np.float32)
        m = np.zeros((len(mats), n), np.float32)
        for j, s in enumerate(mats):
            x[j, :len(s)] = s[:MAX_TOKENS]
            m[j, :len(s)] = 1
        return x, m

    xa, ma = pad([s[:MAX_TOKENS] for s in ta])
    xb, mb = pad([s[:MAX_TOKENS] for s in tb])
    return torch.from_numpy(np.concatenate([xa, xb], 1)), torch.from_numpy(ma), torch.from_numpy(mb)


class CrossVerifier:
    """Loads a model file against the embedder's MiniLM and scores pairs of question states."""

    def __init__(self, arrays: dict[str, np.ndarray], bert: Any) -> None:
        import torch
        from torch import nn

        check(arrays, bert)
        self.split = int(arrays["split"])
        self.heads = int(bert.config.num_attention_heads)
        self.layers = base_layers(bert, self.split)
        scale = float(arrays["lora_scale"])
        self.delta: list[dict[str, Any]] = []
        with torch.no_grad():
            for i, base in enumerate(self.layers):
                dl: dict[str, Any] = {}
                for name in ADAPTED:  # merged: W + scale * B A, as a second matrix so the embedder's stays as is
                    w = base[name].weight + scale * torch.from_numpy(arrays[f"l{i}_{name}_b"] @ arrays[f"l{i}_{name}_a"])
                    merged = nn.Linear(w.shape[1], w.shape[0])
                    merged.weight.copy_(w)
                    merged.bias.copy_(base[name].bias)
                    base = {**base, name: merged}
                for ln in ("ln1", "ln2"):
                    norm = nn.LayerNorm(arrays[f"l{i}_{ln}_w"].shape[0], eps=base[ln].eps)
                    norm.weight.copy_(torch.from_numpy(arrays[f"l{i}_{ln}_w"]))
                    norm.bias.copy_(torch.from_numpy(arrays[f"l{i}_{ln}_b"]))
                    dl[ln] = norm
                self.layers[i] = base
                self.delta.append(dl)
            self.hid = nn.Linear(*arrays["w_hid"].shape)
            self.hid.weight.copy_(torch.from_numpy(arrays["w_hid"].T))
            self.hid.bias.copy_(torch.from_numpy(arrays["b_hid"]))
            self.out = nn.Linear(arrays["w_out"].shape[0], 1)
            self.out.weight.copy_(torch.from_numpy(arrays["w_out"].T))
            self.out.bias.copy_(torch.from_numpy(arrays["b_out"]))
        self.thresholds = dict(zip(arrays["fhr"].tolist(), arrays["thr"].tolist(), strict=True))

    @classmethod
    def load(cls, path: Path | str, bert: Any) -> CrossVerifier:
        if Path(path).stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"{path}: larger than a verifier model can be")
        with np.load(path, allow_pickle=False) as z:
            return cls({k: z[k] for k in z.files}, bert)

    @staticmethod
    def save(path: Path | str, **arrays: Any) -> None:
        np.savez_compressed(path, format=np.array(FORMAT), **{k: np.asarray(v) for k, v in arrays.items()})

    def threshold(self, max_false_hit_rate: float) -> float:
        return float(self.thresholds[min(self.thresholds, key=lambda f: abs(f - max_false_hit_rate))])

    def logits(self, ta: list[np.ndarray], tb: list[np.ndarray]) -> np.ndarray:
        """One logit per pair (ta[i], tb[i]) of questions' hidden states after layer `split`."""
        import torch

        x, ma, mb = join(ta, tb)
        with torch.inference_mode():
            h = joint_forward(x, torch.cat([ma, mb], 1), self.layers, self.delta, self.heads)
            z = self.out(torch.tanh(self.hid(pool_pair(h, ma, mb))))
        return z[:, 0].numpy().astype(np.float64)  # type: ignore[no-any-return]

    def prob(self, ta: list[np.ndarray], tb: list[np.ndarray]) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(ta, tb)))  # type: ignore[no-any-return]


def check(arrays: dict[str, np.ndarray], bert: Any) -> None:
    """A model file's arrays must be this format, for this base model, with every array the right shape."""
    if int(arrays.get("format", np.array(0))) != FORMAT:
        raise ValueError("not a verifier model of this version (retrain with bench/cache_quality_cross.py)")
    n_layers, d = int(bert.config.num_hidden_layers), int(bert.config.hidden_size)
    split = int(arrays.get("split", np.array(-1)))
    if not 0 <= split < n_layers or int(arrays.get("hidden", np.array(0))) != d:
        raise ValueError("verifier model: made for another base model (split/hidden size do not match)")
    ffn = int(bert.config.intermediate_size)
    dims = {"query": (d, d), "value": (d, d), "attn_out": (d, d), "ffn_in": (d, ffn), "ffn_out": (ffn, d)}
    want: dict[str, tuple[int, ...]] = {}
    r = arrays.get(f"l0_{ADAPTED[0]}_a", np.zeros((0, 0))).shape[0]
    for i in range(n_layers - split):
        for name, (din, dout) in dims.items():
            want[f"l{i}_{name}_a"], want[f"l{i}_{name}_b"] = (r, din), (dout, r)
        for ln in ("ln1", "ln2"):
            want[f"l{i}_{ln}_w"] = want[f"l{i}_{ln}_b"] = (d,)
    k = arrays.get("w_hid", np.zeros((0, 0))).shape[1]
    want |= {"w_hid": (3 * d, k), "b_hid": (k,), "w_out": (k, 1), "b_out": (1,), "lora_scale": (), "fhr": (4,),
             "thr": (4,)}
    for name, shape in want.items():
        a = arrays.get(name)
        if a is None or a.shape != shape or a.dtype.kind != "f" or not np.all(np.isfinite(a)):
            raise ValueError(f"verifier model: array {name!r} missing, of the wrong shape or not finite numbers")
    if not 1 <= r <= 64 or not 1 <= k <= 1024:
        raise ValueError("verifier model: adapter rank or head size out of range")
