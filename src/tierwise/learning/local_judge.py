"""A local judge: learns the frontier judge's verdicts on local answers, so evaluation can get cheaper.

Trained on accumulated (request, local answer, verdict) triples — what `tierwise flywheel export` writes to
`judge.jsonl`, or `evidence.verdicts` — with a TF-IDF logistic regression over the request and the answer
(word and character n-grams of the answer, which carry its shape: length, hedging, a final number).
For a shadow pair (the frontier answered the same request) there is a cheaper judge still:
`answers_agree`, whether both answers end on the same number. `agreement` measures either against held-out frontier verdicts: accuracy and Cohen's kappa (agreement beyond
what the two would share by chance). A route may hand evaluation to it only when kappa clears the bar
the user set, keeping a frontier audit sample to watch that the agreement holds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Agreement:
    n: int
    accuracy: float
    kappa: float
    base_rate: float  # share of held-out verdicts that accept


class LocalJudge:
    def __init__(self, c: float = 1.0) -> None:
        self.c = c
        self._model = None

    def _pipeline(self):  # type: ignore[no-untyped-def]
        from sklearn.compose import ColumnTransformer
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        feats = ColumnTransformer([
            ("prompt", TfidfVectorizer(sublinear_tf=True, min_df=2, max_features=20_000), 0),
            ("answer_words", TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2), max_features=50_000), 1),
            ("answer_chars", TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(3, 5), min_df=3,
                                             max_features=50_000), 1),
        ])
        return Pipeline([("x", feats), ("clf", LogisticRegression(C=self.c, max_iter=2000,
                                                                  class_weight="balanced"))])

    @staticmethod
    def _rows(prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        return np.array([[p, a] for p, a in zip(prompts, answers, strict=True)], dtype=object)

    def fit(self, prompts: Sequence[str], answers: Sequence[str], accepted: Sequence[bool]) -> LocalJudge:
        y = np.asarray(accepted, dtype=int)
        if len(set(y.tolist())) < 2:
            raise ValueError("the local judge needs both accepted and rejected verdicts to learn from")
        self._model = self._pipeline().fit(self._rows(prompts, answers), y)
        return self

    def accept_probability(self, prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        if self._model is None:
            raise ValueError("the local judge is not trained")
        return self._model.predict_proba(self._rows(prompts, answers))[:, 1]

    def predict(self, prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        return self.accept_probability(prompts, answers) >= 0.5


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def final_answer(text: str | None) -> str | None:
    """The last number in an answer (the convention of math word problems), normalised."""
    found = _NUMBER.findall(text or "")
    return found[-1].replace(",", "") if found else None


def answers_agree(local: str, reference: str) -> bool | None:
    """Pairwise judge for a shadow pair: do the local and the frontier answer end on the same number?
    None when either has no number (this judge has nothing to say then)."""
    a, b = final_answer(local), final_answer(reference)
    if a is None or b is None:
        return None
    try:
        return abs(float(a) - float(b)) < 1e-9
    except ValueError:
        return a == b


def kappa(pairs: Sequence[tuple[bool, bool]]) -> float:
    """Cohen's kappa of (local, frontier) verdict pairs; 1.0 when both always give the same single verdict."""
    n = len(pairs)
    if n == 0:
        return 0.0
    po = sum(a == b for a, b in pairs) / n
    pa, pb = sum(a for a, _ in pairs) / n, sum(b for _, b in pairs) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    if pe >= 1.0:
        return 1.0 if po >= 1.0 else 0.0
    return (po - pe) / (1 - pe)


def agreement(frontier: Sequence[bool], local: Sequence[bool]) -> Agreement:
    from sklearn.metrics import cohen_kappa_score

    f = np.asarray(frontier, dtype=int)
    loc = np.asarray(local, dtype=int)
    return Agreement(len(f), float((f == loc).mean()), float(cohen_kappa_score(f, loc)), float(f.mean()))
