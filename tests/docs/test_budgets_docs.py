"""docs/budgets.md names every key of the `budgets:` and `rate_limits:` sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierwise.budgets.config import (
    BudgetLimit,
    BudgetsConfig,
    RateLimit,
    RateLimitsConfig,
    RouteSpend,
    StoreConfig,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("model", [BudgetsConfig, BudgetLimit, RouteSpend, StoreConfig, RateLimitsConfig, RateLimit])
def test_every_budgets_key_is_documented(model):
    text = (DOCS / "budgets.md").read_text(encoding="utf-8")
    missing = [k for k in model.model_fields if f"`{k}`" not in text]
    assert not missing, f"docs/budgets.md: undocumented {model.__name__} keys {missing}"


def test_readme_links_the_page():
    assert "docs/budgets.md" in (DOCS.parent / "README.md").read_text(encoding="utf-8")
