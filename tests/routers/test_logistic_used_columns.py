"""The stacked routers' logistic members fit on the hashed TF-IDF columns the training prompts use (newuser32:
`tierwise eval mine.jsonl -r stack-lsa` on 80 prompts spent ~90% of its time in L-BFGS steps over 2^18 columns,
nearly all empty). A column no prompt uses stays at zero, so the weights are the same."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from tierwise.routers import stack


def test_only_the_used_columns_reach_the_optimiser_and_the_weights_are_the_same(monkeypatch: Any) -> None:
    rng = np.random.default_rng(7)
    rows, width, used = 40, 1 << 18, rng.choice(1 << 18, size=60, replace=False)
    dense = np.zeros((rows, width))
    for r in range(rows):
        dense[r, rng.choice(used, size=6, replace=False)] = rng.random(6)
    x = sp.csr_matrix(dense)
    y = (dense[:, used[:30]].sum(axis=1) > dense[:, used[30:]].sum(axis=1)).astype(float)

    widths: list[int] = []
    fit = LogisticRegression.fit

    def spy(self: LogisticRegression, xs: Any, ys: Any, *a: Any, **k: Any) -> Any:
        widths.append(xs.shape[1])
        return fit(self, xs, ys, *a, **k)

    monkeypatch.setattr(LogisticRegression, "fit", spy)
    coef, intercept = stack._logistic(x, y, 1.0)
    assert widths == [len(np.unique(x.indices))], widths  # before: [262144]
    monkeypatch.setattr(LogisticRegression, "fit", fit)
    whole = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
    assert coef.shape == (width,) and not coef[np.setdiff1d(np.arange(width), used)].any()
    np.testing.assert_allclose(coef, whole.coef_[0], atol=1e-4)
    assert abs(intercept - float(whole.intercept_[0])) < 1e-4
