"""The docs name every key of the `blackboard:` section, of a `dynamic` route and every statistic."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierwise.dispatch.blackboard_settings import BlackboardConfig, StatConditions
from tierwise.policies.dynamic import DynamicConfig
from tierwise.providers.live_stats import NAMES

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("page, model", [("distributed.md", BlackboardConfig), ("patterns.md", DynamicConfig)])
def test_every_key_is_documented(page, model):
    text = (DOCS / page).read_text(encoding="utf-8")
    missing = [k for k in model.model_fields if k != "policy" and f"`{k}`" not in text]
    assert not missing, f"docs/{page}: undocumented {model.__name__} keys {missing}"


def test_every_statistic_is_documented():
    text = (DOCS / "patterns.md").read_text(encoding="utf-8")
    assert not [s for s in NAMES if f"`{s}`" not in text]
    fields = {k.rsplit("_", 1)[0] for k in StatConditions.model_fields if k.endswith(("_above", "_below"))}
    assert fields | {"breaker_open"} == set(NAMES)  # every statistic can be thresholded
