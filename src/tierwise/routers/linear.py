"""Linear router over hashed TF-IDF features: ridge regression on the strong model's gain.

Regressing the gain (strong outcome − weak outcome) ranks queries by what the strong model
adds, which is what APGR rewards, and it works unchanged for 0/1 correctness and for graded
scores. Training uses scikit-learn; scoring is a numpy gather and dot product. With
`answer=True` the features also include the weak model's answer: a post-hoc scorer for
cascades (the local model has already answered; should the frontier model answer instead?).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers.base import register_kind, remember_quantiles
from tierwise.routers.features import HashingTfidf, SparseRow
from tierwise.verifiers.calculator import CalcError, evaluate

_CALC = re.compile(r"<<([0-9.+\-*/() ]+)=([0-9.\-]+)>>")
_NUMBER = re.compile(r"-?\d[\d,]*\.?\d*")


def answer_signals(answer: str) -> list[str]:
    """Cheap verifier-like signals of a local answer (arithmetic checks, length, a final number)."""
    sig = [f"alen:{min(12, len(answer).bit_length())}"]
    checks = _CALC.findall(answer)
    bad = 0
    for expr, result in checks:
        try:
            if abs(evaluate(expr) - float(result)) > 1e-6:
                bad += 1
        except (CalcError, ValueError):
            bad += 1
    sig.append(f"calc:{len(checks) > 0}:{min(bad, 3)}")
    nums = _NUMBER.findall(answer)
    sig.append(f"nums:{min(6, len(nums).bit_length())}")
    sig.append(f"final_number:{bool(nums) and answer.rstrip().endswith(nums[-1])}")
    return sig


def _answer_text(answer: str | None) -> str:
    """What the post-hoc scorer's answer features read: the answer and its verifier-like signals."""
    return (answer or "") + " " + " ".join(answer_signals(answer or ""))


class LinearRouter:
    IN_SAMPLE_CALIBRATION = True  # fit() keeps its training prompts' own scores; `tierwise eval --save`
    # replaces them by out-of-fold ones (evaluation/deployment.calibrate_out_of_fold)

    def __init__(self, *, answer: bool = False, alpha: float = 3.0, n_buckets: int = 1 << 18) -> None:
        self.kind = "posthoc_linear" if answer else "linear"
        self.answer = answer
        self.alpha = alpha
        self.prompt_features = HashingTfidf(n_buckets)
        self.answer_features = HashingTfidf(n_buckets) if answer else None
        self.coef = np.zeros(n_buckets * (2 if answer else 1), dtype=np.float32)
        self.intercept = 0.0
        self.train_quantiles: np.ndarray | None = None

    def _row(self, prompt: str, answer: str | None) -> SparseRow:
        idx, val = self.prompt_features.row(prompt)
        if self.answer_features is None:
            return idx, val
        aidx, aval = self.answer_features.row(_answer_text(answer))
        return np.concatenate([idx, aidx + self.prompt_features.n_buckets]), np.concatenate([val, aval])

    def _answers(self, data: OutcomeDataset) -> list[str | None]:
        if not self.answer:
            return [None] * len(data)
        if data.weak_responses is None:
            raise ValueError(f"a post-hoc scorer needs the weak model's answers; dataset {data.name!r} has none")
        return list(data.weak_responses)

    def _matrix(self, data: OutcomeDataset) -> Any:
        return self._csr([self._row(p, a) for p, a in zip(data.prompts, self._answers(data), strict=True)])

    def _csr(self, rows: list[SparseRow]) -> Any:
        from scipy.sparse import csr_matrix

        indptr = np.concatenate([[0], np.cumsum([len(r[0]) for r in rows])])
        return csr_matrix((np.concatenate([r[1] for r in rows]), np.concatenate([r[0] for r in rows]), indptr),
                          shape=(len(rows), len(self.coef)))

    def fit(self, data: OutcomeDataset) -> LinearRouter:
        try:
            from sklearn.linear_model import Ridge
        except ImportError:
            raise RuntimeError("training a linear router needs scikit-learn") from None
        # Each text is tokenised and hashed once: its counts give the idf, then its row (three passes over
        # every prompt before, which made cross-validation on 100,000 rows take minutes).
        pf = self.prompt_features
        counts = [pf.counts_of(p) for p in data.prompts]
        pf.fit_counts(counts)
        rows = [pf.row_of_counts(*c) for c in counts]
        if self.answer_features is not None:
            af = self.answer_features
            af.fit([a or "" for a in self._answers(data)])
            answer_rows = [af.row(_answer_text(a)) for a in self._answers(data)]
            rows = [(np.concatenate([i, ai + pf.n_buckets]), np.concatenate([v, av]))
                    for (i, v), (ai, av) in zip(rows, answer_rows, strict=True)]
        x = self._csr(rows)
        model = Ridge(alpha=self.alpha).fit(x, data.gain)
        self.coef = np.asarray(model.coef_, dtype=np.float32)
        self.intercept = float(model.intercept_)
        remember_quantiles(self, np.asarray(x @ self.coef, dtype=float) + self.intercept)  # = self.score(data)
        return self

    def score(self, data: OutcomeDataset) -> np.ndarray:
        return np.asarray(self._matrix(data) @ self.coef, dtype=float) + self.intercept

    def score_text(self, prompt: str, answer: str | None = None) -> float:
        idx, val = self._row(prompt, answer)
        return float(np.dot(self.coef[idx], val)) + self.intercept

    def meta(self) -> dict[str, Any]:
        return {"answer": self.answer, "alpha": self.alpha, "n_buckets": self.prompt_features.n_buckets,
                "intercept": self.intercept}

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"coef": self.coef, "prompt_idf": self.prompt_features.idf}
        if self.answer_features is not None:
            out["answer_idf"] = self.answer_features.idf
        return out

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> LinearRouter:
        r = cls(answer=bool(meta["answer"]), alpha=float(meta["alpha"]), n_buckets=int(meta["n_buckets"]))
        r.coef = arrays["coef"].astype(np.float32)
        if r.coef.shape != (r.prompt_features.n_buckets * (2 if r.answer else 1),):
            raise ValueError("coefficient vector does not match n_buckets")
        r.prompt_features.idf = arrays["prompt_idf"].astype(np.float32)
        if r.answer_features is not None:
            r.answer_features.idf = arrays["answer_idf"].astype(np.float32)
        r.intercept = float(meta["intercept"])
        return r


register_kind("linear", LinearRouter.restore)
register_kind("posthoc_linear", LinearRouter.restore)
