"""Zero-training baselines every router is compared with: random, and longer prompt → strong."""

from __future__ import annotations

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset


def random_scores(data: OutcomeDataset, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(len(data))


def prompt_length_scores(data: OutcomeDataset) -> np.ndarray:
    """Characters of the prompt; ties are broken by nothing, as in RouteLLM's baseline."""
    return np.array([len(p) for p in data.prompts], dtype=float)
