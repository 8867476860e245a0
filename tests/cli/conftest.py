"""Fixtures shared by the CLI tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from tierwise.cli import main

# An Aider team's architect/editor config (docs/architect-editor.md): `architect` reaches the frontier model alone,
# `editor` its local model first. The doctor tests add the section they are about.
ARCHITECT_EDITOR = """
providers:
  workstation: {kind: openai, base_url: "http://127.0.0.1:9/v1", locality: local}
  cloud: {kind: anthropic, base_url: "http://127.0.0.1:9", api_key_env: ANTHROPIC_API_KEY}
models:
  local-coder: {provider: workstation, model: local}
  frontier: {provider: cloud, model: claude-sonnet-4-5, price: {input: 3, output: 15}}
routes:
  architect: frontier
  editor: {policy: fallback, targets: [local-coder, frontier]}
"""


@pytest.fixture
def architect_editor_doctor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """`tierwise doctor`'s output for ARCHITECT_EDITOR plus the given YAML, run in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-real")

    def doctor(tail: str) -> str:
        (tmp_path / "tierwise.yaml").write_text(ARCHITECT_EDITOR + tail)
        return CliRunner().invoke(main, ["doctor"]).output

    return doctor
