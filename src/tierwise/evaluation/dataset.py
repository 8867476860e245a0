"""Datasets of queries with per-model outcomes: the common input of every router and metric.

One row is one query (a question); `strong` and `weak` are the outcomes of the two tiers on it
(1/0 correctness, or a score such as an MT-Bench grade). Rows may carry the recorded answers
(for replay and post-hoc scorers), token counts (for money) and a group (for k-fold CV by
question, so no question's variants land on both sides of a split).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class OutcomeDataset:
    name: str
    prompts: list[str]
    strong: np.ndarray  # outcome of the strong (frontier) model per query
    weak: np.ndarray  # outcome of the weak (local) model per query
    groups: list[str]  # question id: CV folds never split a group
    subjects: list[str] = field(default_factory=list)  # e.g. MMLU domain, MT-Bench category
    strong_responses: list[str] | None = None
    weak_responses: list[str] | None = None
    input_tokens: np.ndarray | None = None
    output_tokens_strong: np.ndarray | None = None
    output_tokens_weak: np.ndarray | None = None
    strong_model: str = "strong"
    weak_model: str = "weak"

    def __post_init__(self) -> None:
        n = len(self.prompts)
        self.strong = np.asarray(self.strong, dtype=float)
        self.weak = np.asarray(self.weak, dtype=float)
        if self.strong.shape != (n,) or self.weak.shape != (n,) or len(self.groups) != n:
            raise ValueError(f"dataset {self.name!r}: prompts, outcomes and groups must have one entry per query")
        if not self.subjects:
            self.subjects = [""] * n
        for label, resp in (("strong", self.strong_responses), ("weak", self.weak_responses)):
            if resp is not None and len(resp) != n:
                raise ValueError(f"dataset {self.name!r}: {label} responses must have one entry per query")

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def gain(self) -> np.ndarray:
        """What the strong model adds on each query; the quantity a router ranks by."""
        return self.strong - self.weak

    def take(self, idx: Sequence[int] | np.ndarray, name: str | None = None) -> OutcomeDataset:
        ix = np.asarray(idx, dtype=int)

        def pick(xs: list[str] | None) -> list[str] | None:
            return None if xs is None else [xs[i] for i in ix]

        def pick_arr(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[ix]

        return OutcomeDataset(
            name=name or self.name,
            prompts=[self.prompts[i] for i in ix],
            strong=self.strong[ix],
            weak=self.weak[ix],
            groups=[self.groups[i] for i in ix],
            subjects=[self.subjects[i] for i in ix],
            strong_responses=pick(self.strong_responses),
            weak_responses=pick(self.weak_responses),
            input_tokens=pick_arr(self.input_tokens),
            output_tokens_strong=pick_arr(self.output_tokens_strong),
            output_tokens_weak=pick_arr(self.output_tokens_weak),
            strong_model=self.strong_model,
            weak_model=self.weak_model,
        )

    def where(self, mask: np.ndarray, name: str | None = None) -> OutcomeDataset:
        return self.take(np.flatnonzero(mask), name)

    def without_subjects(self, subjects: Sequence[str], name: str | None = None) -> OutcomeDataset:
        drop = set(subjects)
        return self.where(np.array([s not in drop for s in self.subjects], dtype=bool), name)


def concat(parts: Sequence[OutcomeDataset], name: str) -> OutcomeDataset:
    """One dataset from several (e.g. MMLU + GSM8K to train for MT-Bench); groups stay distinct."""
    if not parts:
        raise ValueError("concat needs at least one dataset")

    def join_text(attr: str) -> list[str] | None:
        vals = [getattr(p, attr) for p in parts]
        return None if any(v is None for v in vals) else [x for v in vals for x in v]

    def join_arr(attr: str) -> np.ndarray | None:
        vals = [getattr(p, attr) for p in parts]
        return None if any(v is None for v in vals) else np.concatenate(vals)

    return OutcomeDataset(
        name=name,
        prompts=[x for p in parts for x in p.prompts],
        strong=np.concatenate([p.strong for p in parts]),
        weak=np.concatenate([p.weak for p in parts]),
        groups=[f"{p.name}:{g}" for p in parts for g in p.groups],
        subjects=[x for p in parts for x in p.subjects],
        strong_responses=join_text("strong_responses"),
        weak_responses=join_text("weak_responses"),
        input_tokens=join_arr("input_tokens"),
        output_tokens_strong=join_arr("output_tokens_strong"),
        output_tokens_weak=join_arr("output_tokens_weak"),
        strong_model=parts[0].strong_model,
        weak_model=parts[0].weak_model,
    )


def unit_scale(data: OutcomeDataset) -> OutcomeDataset:
    """The dataset with outcomes mapped onto [0, 1] (by the range seen over both tiers) when they lie
    outside it, e.g. 1–10 grades; 0/1 correctness is returned as it is. Lets graded and 0/1 data be
    trained on together, every part's gain on the same scale."""
    both = np.concatenate([data.strong, data.weak])
    lo, hi = float(both.min()), float(both.max())
    if lo >= 0.0 and hi <= 1.0 or hi <= lo:
        return data
    from dataclasses import replace

    return replace(data, strong=(data.strong - lo) / (hi - lo), weak=(data.weak - lo) / (hi - lo))
