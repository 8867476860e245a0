"""`tierwise doctor` warns of a route that reaches no local model while a data class is `local_only` there: every
request to it holding such data is refused, and nothing in the config said so before a request failed (session 36,
newuser36: an Aider team with `pii: local_only` and the `architect: frontier` route of docs/architect-editor.md had
each planning turn that named a person refused)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tierwise.cli import main

WARNING = "reaches no local model"
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
privacy:
  classes: {pii: {}, secrets: {}}
"""


def doctor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, privacy_tail: str) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-real")
    (tmp_path / "tierwise.yaml").write_text(BASE + privacy_tail)
    return CliRunner().invoke(main, ["doctor"]).output


def test_warns_of_the_remote_only_route_and_says_what_to_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = doctor(tmp_path, monkeypatch, "  ner: {enabled: false}\n  policy: {pii: local_only, secrets: redact}\n")
    lines = [ln for ln in out.splitlines() if WARNING in ln]
    assert len(lines) == 1, out  # not `editor`: its local model takes such requests
    assert "route architect" in lines[0] and "'pii'" in lines[0] and "privacy.routes.architect.pii: redact" in lines[0]


def test_a_route_override_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = doctor(tmp_path, monkeypatch, "  ner: {enabled: false}\n  policy: {pii: local_only}\n"
                                        "  routes: {architect: {pii: redact}}\n")
    assert WARNING not in out, out
    out = doctor(tmp_path, monkeypatch, "  ner: {enabled: false}\n  policy: {pii: redact}\n"
                                        "  routes: {architect: {secrets: local_only}}\n")
    assert WARNING in out and "'secrets'" in out, out


def test_no_warning_without_local_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = doctor(tmp_path, monkeypatch, "  ner: {enabled: false}\n  policy: {pii: redact, secrets: block}\n")
    assert WARNING not in out, out
