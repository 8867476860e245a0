"""`tierwise doctor`'s context-window warning covers Codex too (session 35): since `subagent: true` matches Codex's
`x-openai-subagent: collab_spawn` (clients/codex.py), a rule with it sends Codex's subagent turns to the local model
as well; the warning named only Claude Code's. A `claude_code: subagent` rule still sends only Claude Code's."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tierwise.cli import main

CONFIG = """providers:
  local: {{kind: openai, base_url: 'http://127.0.0.1:9/v1', locality: local}}
  anthropic: {{kind: anthropic, base_url: 'http://127.0.0.1:9', api_key_env: ANTHROPIC_API_KEY}}
models:
  small: {{provider: local, model: small, context_window: 8192}}
  sonnet: {{provider: anthropic, model: claude-sonnet-4-5}}
routes:
  main: {{policy: rules, rules: [{{name: agents, match: {match}, target: small}}], default: sonnet}}
"""


def doctor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, match: str) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-real")
    (tmp_path / "tierwise.yaml").write_text(CONFIG.format(match=match))
    return CliRunner().invoke(main, ["doctor"]).output


def test_subagent_rule_warning_names_codex_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = doctor(tmp_path, monkeypatch, "{subagent: true}")
    [line] = [ln for ln in out.splitlines() if "context_window 8,192 is smaller than" in ln]
    assert "Claude Code's subagent turns" in line and "Codex's subagent turns" in line, line
    assert "x-openai-subagent" in line and "rule agents of route main" in line, line


def test_claude_code_only_rule_does_not_name_codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = doctor(tmp_path, monkeypatch, "{claude_code: subagent}")
    [line] = [ln for ln in out.splitlines() if "context_window 8,192 is smaller than" in ln]
    assert "Claude Code's subagent turns" in line and "Codex" not in line, line
