"""`tierwise doctor` warns when a spent budget would send a coding agents' route to a local model too small for
their turns (session 37, newuser37).

A developer ran Codex on the config `tierwise init` wrote (route `main`, rules for Claude Code's and Codex's
traffic, a local llama.cpp model of 4,096 tokens) with `budgets: {on_exhausted: downgrade}`. Once the budget was
spent every Codex turn (~9,500 tokens) went down to the local model, which could not hold it; doctor had warned
about the subagent rule's window but not about the downgrade, which takes the main turns too."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tierwise.cli import main

INIT_SHAPE = """
providers:
  llamacpp: {kind: openai, base_url: "http://127.0.0.1:9/v1", locality: local}
  anthropic: {kind: anthropic, base_url: "http://127.0.0.1:9", api_key_env: ANTHROPIC_API_KEY, locality: remote}
models:
  local: {provider: llamacpp, model: tiny, context_window: WINDOW}
  claude-sonnet: {provider: anthropic, model: claude-sonnet-4-5, context_window: 200000}
routes:
  main:
    policy: rules
    rules:
      - {name: claude-code-background, match: {claude_code: background}, target: local-first}
    default: frontier
  local-first: {policy: fallback, targets: [local, claude-sonnet]}
  frontier: {policy: fallback, targets: [claude-sonnet, local]}
privacy: {classes: {secrets: {}}, policy: {secrets: redact}}
budgets:
  on_exhausted: ACTION
  limits: [{name: daily, usd: 5, window: day}]
"""
WARNING = "once a budget covering it is spent"


def doctor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int, action: str) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-real")
    (tmp_path / "tierwise.yaml").write_text(INIT_SHAPE.replace("WINDOW", str(window)).replace("ACTION", action))
    return CliRunner().invoke(main, ["doctor"]).output


def test_names_the_route_the_downgrade_cannot_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = doctor(tmp_path, monkeypatch, 4096, "downgrade")
    lines = [ln for ln in out.splitlines() if WARNING in ln]
    assert len(lines) == 1, out
    line = lines[0]
    assert "route main" in line and "model local" in line and "4,096" in line, line
    assert "Codex" in line and "Claude Code" in line and "Fix:" in line, line
    assert "route frontier" not in line and "route local-first" not in line, line  # only routes with agents' rules


@pytest.mark.parametrize("window, action", [(32768, "downgrade"), (4096, "refuse")])
def test_no_warning_when_the_local_model_holds_them_or_nothing_downgrades(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          window: int, action: str) -> None:
    out = doctor(tmp_path, monkeypatch, window, action)
    assert WARNING not in out, out
    assert "invalid config" not in out, out
