"""docs/learning.md states the defaults of the reflective route's `boundary`, `schedule`, `value` and
`pairwise_judge` keys as the code has them (it said `credible` defaults to 0.80; the code's default is 0.90)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tierwise.learning.boundary import BoundarySettings
from tierwise.learning.schedule import ScheduleSettings
from tierwise.learning.value import ValueSettings
from tierwise.policies.reflective import PairwiseJudgeConfig

DOC = (Path(__file__).resolve().parents[2] / "docs" / "learning.md").read_text(encoding="utf-8")


def bullet(section: str) -> str:
    """The text of the `- `section`:` bullet of the keys list, its continuation lines included."""
    m = re.search(rf"^- `{section}`[^\n]*(?:\n  [^\n]*)*", DOC, re.M)
    assert m, f"docs/learning.md: no `{section}` bullet"
    return m.group(0)


@pytest.mark.parametrize("section,model", [("boundary", BoundarySettings), ("schedule", ScheduleSettings),
                                           ("value", ValueSettings), ("pairwise_judge", PairwiseJudgeConfig)])
def test_documented_defaults_are_the_codes(section, model):
    stated = re.findall(r"`(\w+)` \((-?\d+(?:[.,]\d+)*)(?=[),:;\s])", bullet(section))
    checked = 0
    for key, value in stated:
        field = model.model_fields.get(key)
        if field is None or not isinstance(field.default, (int, float)) or isinstance(field.default, bool):
            continue
        assert float(value.replace(",", "")) == pytest.approx(float(field.default)), \
            f"docs/learning.md: `{section}.{key}` documented as {value}, default {field.default}"
        checked += 1
    assert checked >= 2, (section, stated)
