"""`tierwise doctor` warns when `budgets.on_exhausted: downgrade` (the section's default) cannot act on a route:
one that reaches no local model and names no `downgrade_to` refuses (429) once spent, as `refuse` would (session
36, newuser36: an Aider team's `architect: frontier` route learned it from a 429 while `editor` went on locally)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

WARNING = "budgets.on_exhausted is downgrade"
BUDGETS = """budgets:
  limits: [{name: monthly, usd: 5, window: month}]
"""


def test_names_the_route_that_cannot_downgrade(architect_editor_doctor: Callable[[str], str]) -> None:
    out = architect_editor_doctor(BUDGETS + "  on_exhausted: downgrade\n")
    [line] = [ln for ln in out.splitlines() if WARNING in ln]
    assert "route architect" in line and "editor" not in line and "downgrade_to" in line, line


@pytest.mark.parametrize("tail", [
    "",  # refuse, the default: nothing promised
    "  on_exhausted: downgrade\n  routes: {architect: {downgrade_to: local-coder}}\n",  # the fix the line names
    "  on_exhausted: downgrade\n  routes: {architect: {on_exhausted: refuse}}\n",
])
def test_no_warning_where_nothing_was_promised_or_it_is_fixed(architect_editor_doctor: Callable[[str], str],
                                                              tail: str) -> None:
    out = architect_editor_doctor(BUDGETS + tail)
    assert WARNING not in out, out
    assert "invalid config" not in out, out
