"""`tierwise doctor` warns when a config set up for coding agents sends them to a remote model with no privacy
class for secrets (session 35, newuser35): the config `tierwise init` writes routes Claude Code's and Codex's
traffic, and without a privacy section a .env the agent reads reaches the frontier model as written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tierwise.cli import main

WARNING = "no privacy class catches secrets"
PRIVACY = "\nprivacy: {classes: {secrets: {}}, policy: {secrets: redact}}\n"


@pytest.fixture
def init_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-real")
    r = CliRunner().invoke(main, ["init", "--local", "http://127.0.0.1:9/v1"])
    assert r.exit_code == 0, r.output
    path = tmp_path / "tierwise.yaml"
    # Since session 36 init writes the privacy section itself (tests/privacy/test_init_config_secrets.py): these tests
    # are about the init config without it, as a user who deleted it (or an older init) has it.
    text = path.read_text()
    assert "\nprivacy:" in text
    path.write_text(text[:text.index("\nprivacy:") + 1])
    return path


def test_doctor_warns_on_the_init_config_without_secrets_redaction(init_config: Path) -> None:
    out = CliRunner().invoke(main, ["doctor"]).output
    assert WARNING in out and "route main" in out and "policy: {secrets: redact}" in out, out


@pytest.mark.parametrize("privacy", [PRIVACY, "\nprivacy: {policy: {pii: redact}}\n"])
def test_no_warning_once_secrets_are_a_privacy_class(init_config: Path, privacy: str) -> None:
    # a privacy section without `classes:` gets the default classes, secrets among them
    init_config.write_text(init_config.read_text() + privacy)
    out = CliRunner().invoke(main, ["doctor"]).output
    assert WARNING not in out, out


def test_no_warning_without_coding_agent_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-real")
    (tmp_path / "tierwise.yaml").write_text(
        "providers:\n  anthropic: {kind: anthropic, base_url: 'http://127.0.0.1:9', api_key_env: ANTHROPIC_API_KEY}\n"
        "models:\n  sonnet: {provider: anthropic, model: claude-sonnet-4-5}\n"
        "routes:\n  main: {policy: rules, rules: [{match: {images: true}, target: sonnet}], default: sonnet}\n")
    out = CliRunner().invoke(main, ["doctor"]).output
    assert WARNING not in out, out
