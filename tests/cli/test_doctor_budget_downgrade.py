"""`tierwise doctor` warns when `budgets.on_exhausted: downgrade` (the section's default) cannot act on a route:
one that reaches no local model and names no `downgrade_to` refuses (429) once spent, as `refuse` would (session
36, newuser36: an Aider team's `architect: frontier` route learned it from a 429 while `editor` went on locally)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tierwise.cli import main

WARNING = "budgets.on_exhausted is downgrade"
BASE = """
providers:
  workstation: {kind: openai, base_url: "http://127.0.0.1:9/v1", locality: local}
  cloud: {kind: anthropic, base_url: "http://127.0.0.1:9", api_key_env: ANTHROPIC_API_KEY}
models:
  local-coder: {provider: workstation, model: local}
  frontier: {provider: cloud, model: claude-sonnet-4-5, price: {input: 3, output: 15}}
routes:
  architect: frontier
  editor: {policy: fallback, targets: [local-coder, frontier]}
budgets:
  limits: [{name: monthly, usd: 5, window: month}]
"""


def doctor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tail: str) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-real")
    (tmp_path / "tierwise.yaml").write_text(BASE + tail)
    return CliRunner().invoke(main, ["doctor"]).output


def test_names_the_route_that_cannot_downgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = doctor(tmp_path, monkeypatch, "  on_exhausted: downgrade\n")
    [line] = [ln for ln in out.splitlines() if WARNING in ln]
    assert "route architect" in line and "editor" not in line and "downgrade_to" in line, line


@pytest.mark.parametrize("tail", [
    "",  # refuse, the default: nothing promised
    "  on_exhausted: downgrade\n  routes: {architect: {downgrade_to: local-coder}}\n",  # the fix the line names
    "  on_exhausted: downgrade\n  routes: {architect: {on_exhausted: refuse}}\n",
])
def test_no_warning_where_nothing_was_promised_or_it_is_fixed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              tail: str) -> None:
    out = doctor(tmp_path, monkeypatch, tail)
    assert WARNING not in out, out
    assert "invalid config" not in out, out
