"""Passages: text cut at paragraph and sentence boundaries into pieces of about a given size,
and scored against a query with BM25 (bm25s), optionally mixed with embedding similarity."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

_PARA = re.compile(r"\n\s*\n")
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'`])|\n")


# Where a very long sentence may be cut: after whitespace or JSON/CSV punctuation, never between two digits.
_BOUNDARY = frozenset(" \t,;{}[]\"'<>|")


def _cut(sent: str, size: int) -> int:
    """Where to cut a sentence longer than `size`: the last boundary in its second half, so a value the
    privacy boundary would find (an e-mail address, a card's digit groups) is not cut in two and sent as
    pieces it no longer recognises (`jane.doe@` | `example.com`: session 24, attack-privacy4); by
    characters only when there is none (one token of `size / 2` characters or more)."""
    for k in range(size, size // 2, -1):
        c = sent[k - 1]
        if c in _BOUNDARY and not (sent[k - 2:k - 1].isdigit() and sent[k:k + 1].isdigit()):
            return k
    return size


def split(text: str, size: int) -> list[str]:
    """Pieces of about `size` characters whose concatenation (with separators) is the text."""
    out: list[str] = []
    for para in _PARA.split(text):
        if not para.strip():
            continue
        if len(para) <= size:
            out.append(para)
            continue
        cur = ""
        for sent in _SENT.split(para):
            if cur and len(cur) + len(sent) + 1 > size:
                out.append(cur)
                cur = ""
            while len(sent) > size:  # one very long sentence: cut it between words
                k = _cut(sent, size)
                out.append(sent[:k])
                sent = sent[k:]
            cur = f"{cur} {sent}" if cur else sent
        if cur:
            out.append(cur)
    return out


def bm25_scores(passages: Sequence[str], query: str) -> np.ndarray:
    import bm25s

    corpus = bm25s.tokenize(list(passages), stopwords="en", show_progress=False)
    if not corpus.vocab:
        return np.zeros(len(passages), dtype=np.float32)
    index = bm25s.BM25()
    index.index(corpus, show_progress=False)
    q = [w for w in bm25s.tokenize([query], stopwords="en", show_progress=False, return_ids=False)[0]
         if w in corpus.vocab]
    if not q:
        return np.zeros(len(passages), dtype=np.float32)
    return np.asarray(index.get_scores(q), dtype=np.float32)


def scores(passages: Sequence[str], query: str, embedder: Any = None) -> np.ndarray:
    """Relevance of each passage to the query in [0, 1]-ish: BM25 scaled by its maximum, plus the
    embedding cosine when an embedder is given (half weight each)."""
    s = bm25_scores(passages, query)
    top = float(s.max()) if len(s) else 0.0
    s = s / top if top > 0 else s
    if embedder is not None and len(passages):
        vecs = embedder.encode([query, *passages])
        cos = vecs[1:] @ vecs[0]
        s = 0.5 * s + 0.5 * np.clip(cos, 0, 1)
    return s
