"""Static token vectors distilled from the local sentence-embedding model, for short texts on the request path
(issue 22: the options of a multiple-choice question, session 27).

A full pass of all-MiniLM-L6-v2 over a question's four options cost 21–31 ms of CPU per request (its forward pass,
~57 tokens; bench/RESULTS.md, session 27, transfer8). Here the model runs once per vocabulary token, at fit time
(~30 s of CPU for 30,522 tokens, memoised per process): a token's vector is the model's mean-pooled output for
`[CLS] token [SEP]` (the distillation model2vec uses). The table is centred (every raw vector shares one large
common direction, which made any two texts look alike), and a text's vector is the unit sum of its tokens' vectors,
each weighted a / (a + p), p the token's frequency in the training texts (smooth inverse frequency, a = 1e-3: "the",
"of" and "a" say little about what an option means). At request time: the tokenizer and a table look-up, no
transformer. The table is saved with the router (float16, ~23 MB before compression).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tierwise.routers.features import DEFAULT_EMBEDDING_MODEL, Embedder, _local_model_path

SIF = 1e-3
MAX_CHARS = 1000  # per text: an option longer than this says nothing more (the model itself reads 254 tokens)
MAX_TOKENS = 254
DIMS = 384


def distilled_table(model: str = DEFAULT_EMBEDDING_MODEL) -> np.ndarray:
    """The centred vocabulary table (vocab × dims, float16): the model's mean-pooled output for each token alone.
    A pure function of the model's weights, so kept per process and on disk (`_cached_table`): ~30 s of CPU once
    per machine, not once per process (every `tierwise eval -r transfer`, every test worker)."""
    return _table(model)


@functools.lru_cache(maxsize=1)  # one key whether the caller named the model or not
def _table(model: str) -> np.ndarray:
    path = _cache_path(model)
    table = _read_cached(path) if path is not None else None
    if table is None and path is not None:
        with _distilling(path):  # processes starting cold at once: one distils, the others read its file
            table = _read_cached(path)
            if table is None:
                table = _distil(model)
                _write_cached(path, table)
    elif table is None:
        table = _distil(model)
    table.flags.writeable = False
    return table


@contextlib.contextmanager
def _distilling(path: Path) -> Iterator[None]:
    """An exclusive lock on `<path>.lock` while held (two test workers or `tierwise eval` runs started together
    each paid the ~30 s of CPU); none where the cache folder cannot be written or there is no `fcntl`."""
    try:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path.with_suffix(".lock"), "a")  # noqa: SIM115 (closed below, which also unlocks)
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
    finally:
        fh.close()


def _cache_path(model: str) -> Path | None:
    """`<cache>/static_tokens/<sha256 of the model's name and its files' names, sizes and mtimes>.npy`, under the
    folder the embedding cache uses (`$TIERWISE_CACHE_DIR`, else `$XDG_CACHE_HOME/tierwise`); None for a model not
    on disk (it would be fetched: nothing to key on)."""
    import hashlib

    from tierwise.routers.embedding_cache import default_cache_dir

    folder = Path(_local_model_path(model))
    if not folder.is_dir():
        return None
    h = hashlib.sha256(model.encode() + b"\0")
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return default_cache_dir().parent / "static_tokens" / f"{h.hexdigest()[:32]}.npy"


def _read_cached(path: Path) -> np.ndarray | None:
    """The cached table, or None when absent or not a table (checked as a saved router's is: a cache file is only
    as trusted as the folder it sits in)."""
    try:
        t = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if t.dtype != np.float16 or t.ndim != 2 or t.shape[1] != DIMS or not len(t) or not np.isfinite(t).all():
        return None
    return t


def _write_cached(path: Path, table: np.ndarray) -> None:
    """Written whole or not at all (a temporary file renamed); a cache that cannot be written is no error."""
    import os
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, table, allow_pickle=False)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        return


def _distil(model: str) -> np.ndarray:
    import torch

    st = Embedder(model)._load()
    tok, hf = st.tokenizer, st[0].auto_model
    size = len(tok)
    out = np.zeros((size, hf.config.hidden_size), np.float32)
    with torch.inference_mode():
        for s in range(0, size, 1024):
            ids = torch.arange(s, min(size, s + 1024))
            x = torch.stack([torch.full_like(ids, tok.cls_token_id), ids, torch.full_like(ids, tok.sep_token_id)], 1)
            out[s:s + len(ids)] = hf(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state.mean(1).numpy()
    out -= out.mean(axis=0)
    return out.astype(np.float16)


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


class StaticTokenVectors:
    kind = "static"

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, sif: float = SIF) -> None:
        self.model_name, self.sif = model, float(sif)
        self.table: np.ndarray | None = None
        self.weight: np.ndarray | None = None
        self._tok: Any = None

    def _tokenizer(self) -> Any:
        if self._tok is None:
            from tokenizers import Tokenizer

            from tierwise.routers.features import NO_EMBEDDINGS, MissingExtra

            path = Path(_local_model_path(self.model_name)) / "tokenizer.json"
            if not path.is_file():
                raise MissingExtra(NO_EMBEDDINGS)
            tok = Tokenizer.from_file(str(path))
            tok.no_padding()
            tok.no_truncation()  # texts are cut to MAX_CHARS and MAX_TOKENS here
            self._tok = tok
        return self._tok

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        encs = self._tokenizer().encode_batch([t[:MAX_CHARS] for t in texts], add_special_tokens=False)
        return [e.ids[:MAX_TOKENS] for e in encs]

    def fit(self, texts: Sequence[str]) -> StaticTokenVectors:
        """The table (distilled once per process) and the tokens' weights from their frequency in `texts`."""
        self.table = distilled_table(self.model_name)
        counts = np.zeros(len(self.table))
        for ids in self.token_ids(texts):
            np.add.at(counts, ids, 1.0)
        p = counts / max(counts.sum(), 1.0)
        self.weight = (self.sif / (self.sif + p)).astype(np.float32)
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self.table is None or self.weight is None:
            raise RuntimeError("StaticTokenVectors.encode before fit")
        out = np.zeros((len(texts), self.table.shape[1]), np.float32)
        for i, ids in enumerate(self.token_ids(texts)):
            ix = np.asarray(ids, dtype=np.int64)
            ix = ix[ix < len(self.table)]  # a table loaded from a file may be shorter than the vocabulary
            if len(ix):
                out[i] = self.weight[ix] @ self.table[ix].astype(np.float32)
        return _unit(out)

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model_name, "sif": self.sif}

    def arrays(self) -> dict[str, np.ndarray]:
        assert self.table is not None and self.weight is not None
        return {"table": self.table, "weight": self.weight}

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> StaticTokenVectors:
        """A saved table is checked before use: a NaN row turned every option with its token into NaN, which the
        member's quantile read as its top (a request's score moved 0.50 → 0.75, no error); a float64 table beyond
        float16's range became inf; a complex one lost its imaginary part; a narrow one changed the geometry."""
        model = meta.get("model", DEFAULT_EMBEDDING_MODEL)
        if model != DEFAULT_EMBEDDING_MODEL:  # the name is read as a local path: a file must not pick the tokenizer
            raise ValueError(f"static token vectors: distilled from {DEFAULT_EMBEDDING_MODEL} only, not {model!r}")
        v = cls(model, float(meta.get("sif", SIF)))
        raw_t, raw_w = np.asarray(arrays["table"]), np.asarray(arrays["weight"])
        if raw_t.dtype.kind != "f" or raw_w.dtype.kind != "f":
            raise ValueError(f"static token vectors: the table and the weights must be floats, not "
                             f"{raw_t.dtype} and {raw_w.dtype}")
        with np.errstate(over="ignore"):  # a value beyond float16's range becomes inf, refused below
            table, weight = raw_t.astype(np.float16), raw_w.astype(np.float32)
        if table.ndim != 2 or table.shape[1] != DIMS or not len(table) or weight.shape != (len(table),):
            raise ValueError(f"static token vectors: a table of shape {table.shape} and weights of shape "
                             f"{weight.shape} do not match (tokens × {DIMS}, one weight per token)")
        if not (np.isfinite(table).all() and np.isfinite(weight).all() and (weight >= 0).all()):
            raise ValueError("static token vectors: the table or the weights hold NaN, inf or negative weights")
        table.flags.writeable = False
        v.table, v.weight = table, weight
        v._tokenizer()  # at load, not on the first request: a missing model fails the route's start, never a request
        return v
