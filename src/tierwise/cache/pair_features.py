"""Features of a (cached question, new question) pair for the semantic tier's verifier.

Cosine alone cannot tell "How do I learn Python?" from "How do I learn Java?" (cosine 0.8) while
accepting "How can I lose weight fast?" / "What is the quickest way to lose weight?". The verifier
looks at what differs: the element-wise product and absolute difference of the two embeddings
(which directions disagree), and surface cues that embeddings blur: numbers, capitalised names,
the question word, negation, words one question has and the other lacks (weighted by rarity),
lengths. Every feature is symmetric in the two questions.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[A-Za-z0-9']+")
_NUM = re.compile(r"\d+(?:[.,]\d+)?")
_CAP = re.compile(r"(?<![.?!]\s)(?<!^)\b[A-Z][A-Za-z0-9]+")
_QWORDS = ("what", "why", "how", "when", "where", "who", "which", "whom", "whose", "is", "are", "can", "do",
           "does", "should", "will", "would", "could", "did")
_NEG = frozenset({"not", "no", "never", "without", "none", "nobody", "nothing", "cannot", "cant", "don't",
                  "doesn't", "isn't", "aren't", "won't", "can't", "didn't", "shouldn't", "wouldn't", "nor"})
STOP = frozenset(("a an the of to in on for and or is are was were be been do does did i you my your me we "
                  "it its this that these those what why how when where who which with as at by from can "
                  "should would could will about into than then so if there their they he she his her").split())
IDF_BUCKETS = 1 << 15
HAND_NAMES = ("cosine", "jaccard", "content_jaccard", "idf_overlap", "idf_unmatched_max", "idf_unmatched_min",
              "unmatched_max", "unmatched_min", "len_ratio", "len_diff", "num_mismatch", "num_any",
              "cap_jaccard", "cap_unmatched", "qword_differ", "neg_mismatch", "first_two_same", "last_word_same",
              "char_len_ratio", "bigram_jaccard", "symbol_mismatch", "symbol_any")


_PLAIN = frozenset(" ?.,!'\"-:;()")


def symbols(text: str) -> set[str]:
    """Characters that are not ASCII letters, digits or plain punctuation: "C" vs "C++", "#", "%",
    other scripts, emoji — differences a word tokenizer drops."""
    return {c for c in text if not (c.isascii() and (c.isalnum() or c in _PLAIN))}


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def bucket(word: str) -> int:
    return zlib.crc32(word.encode()) & (IDF_BUCKETS - 1)


def _jac(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _qword(ws: list[str]) -> str:
    for w in ws[:4]:
        if w in _QWORDS:
            return w
    return ""


def hand_features(a: str, b: str, cos: float, idf: np.ndarray) -> list[float]:
    wa, wb = words(a), words(b)
    sa, sb = set(wa), set(wb)
    ca, cb = sa - STOP, sb - STOP
    ia = {w: float(idf[bucket(w)]) for w in ca}
    ib = {w: float(idf[bucket(w)]) for w in cb}
    shared = sum(ia[w] for w in ca & cb)
    total = sum(ia.values()) + sum(ib[w] for w in cb - ca)
    un_a = sum(ia[w] for w in ca - cb)
    un_b = sum(ib[w] for w in cb - ca)
    na, nb = set(_NUM.findall(a)), set(_NUM.findall(b))
    pa, pb = {w.lower() for w in _CAP.findall(a)}, {w.lower() for w in _CAP.findall(b)}
    nega, negb = bool(sa & _NEG), bool(sb & _NEG)
    la, lb = max(len(wa), 1), max(len(wb), 1)
    ba = {(x, y) for x, y in zip(wa, wa[1:], strict=False)}
    bb = {(x, y) for x, y in zip(wb, wb[1:], strict=False)}
    return [
        cos,
        _jac(sa, sb),
        _jac(ca, cb),
        shared / total if total > 0 else 1.0,
        max(un_a, un_b),
        min(un_a, un_b),
        float(max(len(ca - cb), len(cb - ca))),
        float(min(len(ca - cb), len(cb - ca))),
        min(la, lb) / max(la, lb),
        float(abs(la - lb)),
        float(na != nb),
        float(bool(na or nb)),
        _jac(pa, pb),
        float(len(pa ^ pb)),
        float(_qword(wa) != _qword(wb)),
        float(nega != negb),
        float(wa[:2] == wb[:2]),
        float(bool(wa) and bool(wb) and wa[-1] == wb[-1]),
        min(len(a), len(b)) / max(len(a), len(b), 1),
        _jac(ba, bb),  # type: ignore[arg-type]
        float(symbols(a) != symbols(b)),
        float(bool(symbols(a) or symbols(b))),
    ]


def pair_matrix(a_texts: Sequence[str], b_texts: Sequence[str], ea: np.ndarray, eb: np.ndarray,
                idf: np.ndarray) -> np.ndarray:
    """Rows of [hand features | ea*eb | |ea-eb|] for unit-normalised embeddings ea, eb."""
    cos = np.einsum("ij,ij->i", ea, eb)
    hand = np.array([hand_features(x, y, float(c), idf) for x, y, c in zip(a_texts, b_texts, cos, strict=True)],
                    dtype=np.float32)
    return np.hstack([hand, ea * eb, np.abs(ea - eb)]).astype(np.float32)


def fit_idf(texts: Sequence[str]) -> np.ndarray:
    """Smoothed inverse document frequency per hashed word bucket (unseen words: the maximum)."""
    df = np.zeros(IDF_BUCKETS, dtype=np.float64)
    for t in texts:
        for w in set(words(t)) - STOP:
            df[bucket(w)] += 1
    n = len(texts)
    return np.log((n + 1) / (df + 1)).astype(np.float32)
