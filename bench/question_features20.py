"""Issue 22, round 20: structural question features (cheap, regex only) for within-subject difficulty."""

from __future__ import annotations

import re

import numpy as np

_OPT = re.compile(r"^\s*\(?([A-J])[\.\)]\s*(.*)$", re.M)
_NUM = re.compile(r"\d+(?:\.\d+)?")
_NEG = re.compile(r"\b(?:not|except|least|false|incorrect|never|cannot|none)\b", re.I)
_WORD = re.compile(r"[A-Za-z]+")
_STMT = re.compile(r"\b(?:statement\s*\d|I{1,3}\b\s*(?:and|only|,))", re.I)

NAMES = ("nopts", "optcv", "optlen", "optsim", "nums", "neg", "stmt", "wordlen", "stemlen", "optstem")


def _words(s: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(s)}


def features(prompt: str) -> np.ndarray:
    opts = [m.group(2).strip() for m in _OPT.finditer(prompt)]
    first = _OPT.search(prompt)
    stem = prompt[: first.start()] if first else prompt
    lens = np.array([len(o) for o in opts], float) if opts else np.zeros(1)
    ws = [_words(o) for o in opts]
    sims = [len(a & b) / max(len(a | b), 1) for i, a in enumerate(ws) for b in ws[i + 1:]]
    sw = _words(stem)
    words = _WORD.findall(prompt)
    return np.array([
        len(opts),
        lens.std() / (lens.mean() + 1.0),
        np.log1p(lens.mean()),
        float(np.mean(sims)) if sims else 0.0,
        np.log1p(len(_NUM.findall(prompt))),
        float(bool(_NEG.search(stem))),
        float(bool(_STMT.search(prompt))),
        float(np.mean([len(w) for w in words])) if words else 0.0,
        np.log1p(len(stem)),
        float(np.mean([len(w & sw) / max(len(w), 1) for w in ws])) if ws else 0.0,
    ])


def matrix(prompts: list[str]) -> np.ndarray:
    return np.stack([features(p) for p in prompts])
