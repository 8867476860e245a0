"""Sentence embeddings of the replay's prompts, computed once and kept on disk (`--embed-cache DIR`).

The text model's `features: embedding|both` (learning/request_model.py) reads the shared all-MiniLM-L6-v2 embedding
of a request's prompt. A replay decides 15,416 requests; encoding each on this CPU takes minutes, so the replay
encodes every prompt of the stream once, in batches, and keeps the vectors in DIR/embeddings.npz keyed by a hash of
the prompt's first `max_chars` characters (the characters the model reads). The gateway computes it per request.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence

import numpy as np


def text_key(text: str, max_chars: int) -> str:
    return hashlib.blake2b(text[:max_chars].encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def load(folder: str) -> dict[str, np.ndarray]:
    """DIR/embeddings.npz and any DIR/parts/*.npz (written by parallel encoders) merged."""
    paths = [os.path.join(folder, "embeddings.npz")]
    parts = os.path.join(folder, "parts")
    if os.path.isdir(parts):
        paths += [os.path.join(parts, f) for f in sorted(os.listdir(parts)) if f.endswith(".npz") and ".tmp" not in f]
    out: dict[str, np.ndarray] = {}
    for path in paths:
        if os.path.exists(path):
            z = np.load(path)
            out.update(zip(z["keys"].tolist(), z["vectors"], strict=True))
    return out


def fill(folder: str, texts: Sequence[str], max_chars: int, batch: int = 64) -> tuple[dict[str, np.ndarray], float]:
    """Every prompt's embedding (encoding those not cached yet and saving them); also the seconds spent encoding."""
    from tierwise.routers.features import Embedder

    have = load(folder)
    todo: dict[str, str] = {}
    for t in texts:
        k = text_key(t, max_chars)
        if k not in have:
            todo.setdefault(k, t[:max_chars])
    spent = 0.0
    if todo:
        keys = list(todo)
        t0 = time.process_time()
        vecs = Embedder().encode([todo[k] for k in keys], batch_size=batch)
        spent = time.process_time() - t0
        have.update(zip(keys, vecs, strict=True))
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, "embeddings.tmp.npz")
        np.savez(tmp, keys=np.array(list(have)), vectors=np.stack(list(have.values())).astype(np.float32))
        os.replace(tmp, os.path.join(folder, "embeddings.npz"))
        with open(os.path.join(folder, "encode_seconds.txt"), "a") as f:
            f.write(f"{len(keys)} prompts {spent:.1f} CPU s\n")
    return have, spent


def embedder(table: dict[str, np.ndarray], max_chars: int) -> Callable[[str], np.ndarray]:
    def embed(text: str) -> np.ndarray:
        return table[text_key(text, max_chars)]
    return embed
