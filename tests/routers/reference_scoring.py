"""The request path of `transfer-lsa` and `stack-lsa` as it was at the start of session 19 (main 6e85bd4), kept
as the reference the faster path is compared with (tests/routers/test_decision_cost.py): straightforward code,
one Python string per token, every shape feature computed, the case-insensitive exception regex over the whole
stem. It reads a fitted router's arrays and nothing of the code under test but the router object's fields.
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Any

import numpy as np

_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def tokens(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    squashed = " ".join(words)
    toks = [f"w:{w}" for w in words]
    toks += [f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    toks += [f"c:{squashed[i:i + 4]}" for i in range(max(0, len(squashed) - 3))]
    n = len(text)
    return toks + [f"len:{min(12, n.bit_length())}", f"digits:{min(8, sum(map(str.isdigit, text)).bit_length())}"]


def token_hashes(text: str) -> np.ndarray:
    return np.array([zlib.crc32(t.encode()) for t in tokens(text)], dtype=np.int64)


def tfidf_row(text: str, n_buckets: int, idf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx, cnt = np.unique(token_hashes(text) & (n_buckets - 1), return_counts=True)
    val = (1.0 + np.log(cnt.astype(np.float32))) * idf[idx]
    norm = float(np.sqrt(np.dot(val, val))) or 1.0
    return idx, (val / norm).astype(np.float32)


_NUM = re.compile(r"\d[\d,]*(?:\.\d+)?")
_OPTION = re.compile(r"\n([A-J])\. ([^\n]*)")
_NEGATION = re.compile(r"\b(?:NOT|EXCEPT|LEAST|FALSE|INCORRECT)\b")
_CUES = ("percent", "%", "fraction", "half", "third", "quarter", "twice", "double", "triple", "each", " per ",
         "every", "times", "more than", "less than", "fewer", "remain", "rest", "total", "average", "$",
         "hour", "minute", "week", "year", "ratio", "profit", "cost", "price", "discount", "interest", "speed",
         "if ", "after", "left", "statement", "all of the above", "none of the above", "both", "true")


def shape_features(text: str) -> np.ndarray:
    low = text.lower()
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


CHOICE_NAMES = ("stem_exception", "option_combinations", "statements", "numeric_option_share",
                "option_overlap", "option_length_spread", "option_log_words")
_OPTION_LINE = re.compile(r"^\s*\(?([A-J])[.)]\s+(.*\S)\s*$")
_EXCEPTION = re.compile(r"\b(?:NOT|EXCEPT|LEAST|FALSE|INCORRECT|CANNOT)\b|(?i:\bexcept\b|\bnot true\b|\bleast likely\b|"
                        r"\b(?:is|are|would|does|do|could|was|were|can) not\b(?=[^\n]*\?)|\bis (?:false|incorrect)\b)")
_COMBINATION = re.compile(r"^(?:(?:I{1,3}|IV|VI{0,3})(?:\s*(?:,\s*and|,|and|&)\s*(?:I{1,3}|IV|VI{0,3}))*(?:\s+only)?|"
                          r"(?:all|none|both|neither) of the (?:above|following|options)|both|neither|"
                          r"[A-J] and [A-J](?: only)?)\.?$", re.IGNORECASE)
_STATEMENT = re.compile(r"\bStatement\s*\d|(?:^|\n)\s*(?:I{1,3}|IV)\.\s")
_WORDS = re.compile(r"\w+")


def parse_choices(text: str) -> tuple[str, list[str]]:
    lines = text.rstrip().split("\n")
    opts: list[str] = []
    first = -1
    for i, line in enumerate(lines):
        m = _OPTION_LINE.match(line)
        if m and ord(m.group(1)) - ord("A") == len(opts):
            if not opts:
                first = i
            opts.append(m.group(2))
        elif m and m.group(1) == "A":
            opts, first = [m.group(2)], i
    if len(opts) < 2:
        return text, []
    return "\n".join(lines[:first]), opts


def _numeric(option: str) -> bool:
    chars = [c for c in option if not c.isspace()]
    return bool(chars) and sum(c.isdigit() or c in "=+-*/^().,%√π$<>" for c in chars) * 2 >= len(chars)


def choice_features(text: str) -> np.ndarray:
    stem, opts = parse_choices(text)
    if not opts:
        return np.zeros(len(CHOICE_NAMES))
    words = [set(_WORDS.findall(o.lower())) for o in opts]
    pairs = [(a, b) for i, a in enumerate(words) for b in words[i + 1:]]
    overlap = float(np.mean([len(a & b) / len(a | b) if a | b else 1.0 for a, b in pairs]))
    lens = np.array([len(o) for o in opts], dtype=float)
    return np.array([
        float(bool(_EXCEPTION.search(stem))),
        sum(bool(_COMBINATION.match(o.strip())) for o in opts) / len(opts),
        float(len(_STATEMENT.findall(stem)) >= 2),
        sum(map(_numeric, opts)) / len(opts),
        overlap,
        float(lens.std() / lens.mean()) if lens.mean() > 0 else 0.0,
        math.log1p(float(np.mean([len(_WORDS.findall(o)) for o in opts]))),
    ])


SHAPE_NAMES = ("chars", "words", "sentences", "words_per_sentence", "numbers", "distinct_numbers",
               "log_max_number", "log_mean_number", "decimals", "digits", "questions", "stem_chars",
               "options", "option_mean_chars", "option_max_chars", "option_min_chars", "option_sd_chars",
               "numeric_options", "negation", "math_symbols", "latex", *(f"cue:{c.strip()}" for c in _CUES))


def _sigmoid(z: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def _rank(s: np.ndarray, grid: np.ndarray, points: np.ndarray) -> np.ndarray:
    lo = np.interp(s, grid, points, left=0.0, right=1.0)
    hi = 1.0 - np.interp(-s, -grid[::-1], points, left=0.0, right=1.0)
    return (lo + hi) / 2.0


def transfer_score(r: Any, prompt: str) -> float:
    """`TransferRouter.score_text` of main 6e85bd4 (members tfidf-logit-wf, tfidf-ridge-gain, shape-ridge-gain), with
    session 33's strong-fails discount of the weak-fails member when the router has it."""
    assert set(r.members) <= {"tfidf-logit-wf", "tfidf-ridge-gain", "shape-ridge-gain"}
    idx, val = tfidf_row(prompt, r.tfidf.n_buckets, r.tfidf.idf)
    cols = []
    for m in r.members:
        if m == "tfidf-logit-wf":
            p = float(_sigmoid(np.asarray(np.dot(r.logit[idx], val) + r.intercepts[0])))
            if getattr(r, "strong", "ignored") == "discount":  # session 33's default: log P(wf) + log P(strong right)
                q = float(_sigmoid(np.asarray(np.dot(r.strong_logit[idx], val) + r.strong_intercept)))
                p = math.log(max(p, 1e-9)) + math.log(max(1.0 - q, 1e-9))
            cols.append(p)
        elif m == "tfidf-ridge-gain":
            cols.append(float(np.dot(r.ridge[idx], val)) + r.intercepts[1])
        else:
            raw = shape_features(prompt).astype(float)
            choice = choice_features(prompt)
            row = np.array([choice[CHOICE_NAMES.index(k)] if k in CHOICE_NAMES else raw[SHAPE_NAMES.index(k)]
                            for k in r.shape])
            z = (np.log1p(np.maximum(row, 0.0)) - r.shape_mu) / r.shape_sd
            cols.append(float(z @ r.shape_coef[:-1] + r.shape_coef[-1]))
    s = np.asarray(cols)[None, :]
    points = np.linspace(0.0, 1.0, r.rank_grid.shape[1])
    ranks = [_rank(s[:, j], r.rank_grid[j], points) + 1e-3 * (s[:, j] - r.centre[j]) / r.scale[j]
             for j in range(s.shape[1])]
    return float(np.average(np.stack(ranks, axis=1), axis=1, weights=r.weights)[0])


def _trees(t: Any, x: np.ndarray) -> float:
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    rows = np.arange(len(x))[:, None]
    trees = np.arange(t.feature.shape[0])[None, :]
    node = np.zeros((len(x), t.feature.shape[0]), dtype=np.int64)
    for _ in range(t.depth):
        go_left = x[rows, t.feature[trees, node]] <= t.threshold[trees, node]
        nxt = np.where(go_left, t.left[trees, node], t.right[trees, node])
        node = np.where(t.leaf[trees, node], node, nxt)
    return float((t.base + t.value[trees, node].sum(axis=1, dtype=np.float64))[0])


def stack_score(r: Any, prompt: str) -> float:
    """`StackRouter.score_text` of main 6e85bd4 with LSA vectors."""
    lsa = r.vectors
    i, w = tfidf_row(prompt, lsa.tfidf.n_buckets, lsa.tfidf.idf)
    v = w @ lsa.components[i]
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    v = (v / np.where(n == 0, 1.0, n)).astype(np.float32)
    dense = np.concatenate([shape_features(prompt), v]) if "trees" in r.members else v
    idx, val = tfidf_row(prompt, r.tfidf.n_buckets, r.tfidf.idf)
    cols = []
    for m in r.members:
        if m == "tfidf-ridge":
            cols.append(float(np.dot(r.ridge[idx], val)) + r.intercepts[0])
        elif m == "tfidf-logit":
            p = _sigmoid(r.logit[:, idx] @ val + r.intercepts[1:3])
            cols.append(float(p[0] - p[1]))
        elif m == "knn":
            z = (v[None, :] - r.knn_mean) @ r.knn_axes.T
            zn = np.linalg.norm(z, axis=1, keepdims=True)
            q = np.asarray(z / np.where(zn == 0, 1.0, zn), dtype=np.float32)[0]
            sims = (r.bank @ q)[None, :]
            k = min(int(r.params["knn"]), sims.shape[1])
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            cols.append(float(np.asarray(r.gain[top].mean(axis=1), dtype=float)[0]))
        else:
            cols.append(_trees(r.trees, dense[None, :]))
    z = (np.asarray(cols)[None, :] - r.centre) / r.scale
    return float((z @ r.weights / r.weights.sum())[0])
