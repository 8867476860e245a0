"""Training a `linear` router tokenises and hashes each prompt once. It did so three times (for the idf, for the
training matrix, for the training scores' quantiles), so `tierwise eval mine.jsonl -r linear` on 100,000 rows
ran for minutes without a word; the router it trains is the same to the bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tierwise.evaluation.loaders import load_jsonl
from tierwise.routers import make_router
from tierwise.routers.base import QUANTILE_POINTS
from tierwise.routers.features import HashingTfidf

FIXTURE = Path(__file__).resolve().parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl"


def test_fit_hashes_each_prompt_once(monkeypatch):
    data = load_jsonl(FIXTURE)
    seen: list[str] = []
    counts = HashingTfidf._counts
    monkeypatch.setattr(HashingTfidf, "_counts", lambda self, text: seen.append(text) or counts(self, text))
    router = make_router("linear").fit(data)
    assert len(seen) == len(data.prompts)
    # and it scores what it was trained to: the quantiles it keeps are those of its own training scores
    monkeypatch.setattr(HashingTfidf, "_counts", counts)
    scores = router.score(data)
    assert np.array_equal(np.quantile(scores, QUANTILE_POINTS), router.train_quantiles)
