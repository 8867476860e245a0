"""Keys that name an environment variable holding a secret (`api_key_env`, `api_keys_env`, `admin_keys_env`,
`viewer_keys_env`, `privacy.mapping.key_env`) take the variable's *name*. A user who writes
`api_key_env: ${ANTHROPIC_API_KEY}` (the README says `${VAR}` works anywhere) put the key itself there, and
`tierwise serve` printed it: "provider anthropic: sk-ant-… is not set … Fix: export sk-ant-…=...". Such a
config now stops at start, naming the line and the key, never the value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tierwise.config import parse_config
from tierwise.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
FAKE_KEY = "sk-ant-api03-notarealkeyNOTAREALKEY0123456789abcdef"  # the shape of an Anthropic key

CONFIG = """\
providers:
  local: {kind: openai, base_url: "http://127.0.0.1:9/v1", locality: local}
  anthropic:
    kind: anthropic
    base_url: https://api.anthropic.com
    api_key_env: %s
models:
  qwen: {provider: local, model: qwen}
  claude: {provider: anthropic, model: claude-sonnet-4-5}
routes:
  main: [qwen, claude]
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TIERWISE_CONFIG"}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(REPO / "src"), ANTHROPIC_API_KEY=FAKE_KEY)
    return env


def test_serve_refuses_a_key_interpolated_where_its_name_belongs(tmp_path: Path) -> None:
    cfg = tmp_path / "tierwise.yaml"
    cfg.write_text(CONFIG % "${ANTHROPIC_API_KEY}")
    # Before: the gateway started and its console warning repeated the key twice.
    proc = subprocess.run([sys.executable, "-m", "tierwise.cli", "serve", "-c", str(cfg), "--port", "0"],
                          cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert FAKE_KEY not in out and FAKE_KEY[:16] not in out, out
    assert "line 6: providers.anthropic.api_key_env: takes the variable's name (ANTHROPIC_API_KEY)" in out, out
    assert "Traceback" not in out


@pytest.mark.parametrize("value", [FAKE_KEY, "gsk_a8B3c9D0e1F2g3H4i5J6k7L8m9N0pQ", "0123abc", "my key"])
def test_a_secret_pasted_in_place_of_the_name_is_refused_without_repeating_it(value: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(CONFIG % f'"{value}"', file="t.yaml")
    msg = e.value.message
    assert "line 6: providers.anthropic.api_key_env: is not the name of an environment variable" in msg, msg
    assert value not in msg


@pytest.mark.parametrize("server", [
    "server: {api_keys_env: [\"${TEAM_KEY}\"]}",
    "server: {api_keys_env: [{env: \"${TEAM_KEY}\"}]}",
    "server: {admin_keys_env: [\"${TEAM_KEY}\"]}",
])
def test_client_and_admin_key_names_too(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_KEY", "team-key-value-that-must-not-show")
    with pytest.raises(ConfigError) as e:
        parse_config(server + "\n" + CONFIG % "ANTHROPIC_API_KEY", file="t.yaml")
    assert "line 1: server." in e.value.message and "takes the variable's name (TEAM_KEY)" in e.value.message
    assert "team-key-value" not in e.value.message


def test_a_missing_variable_names_its_line_and_reads_whole() -> None:
    # Before: no line, and "api_key_env: environment variable …" read like a key to the scrubber, which printed
    # "api_key_env: [redacted] variable …".
    text = CONFIG.replace("https://api.anthropic.com", "${TW_TEST_SURELY_UNSET_URL}") % "ANTHROPIC_API_KEY"
    with pytest.raises(ConfigError) as e:
        parse_config(text, file="t.yaml")
    assert e.value.message == ("t.yaml: line 5: providers.anthropic.base_url: the environment variable "
                               "TW_TEST_SURELY_UNSET_URL is not set (export it, or write "
                               "${TW_TEST_SURELY_UNSET_URL:-default} for a default)")
    text = "observability: {tracing: {headers: {authorization: \"Bearer ${TW_TEST_SURELY_UNSET}\"}}}\n"
    with pytest.raises(ConfigError) as e:
        parse_config(text, file="t.yaml")
    assert "[redacted]" not in e.value.message and "the environment variable TW_TEST_SURELY_UNSET" in e.value.message


def test_a_variable_in_a_flow_list_gets_the_quoting_hint() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config("server:\n  api_keys_env: [${TEAM_KEY}]\n", file="t.yaml")
    assert "line 2: not valid YAML" in e.value.message and "must be quoted" in e.value.message


def test_ordinary_names_still_load() -> None:
    cfg = parse_config("server: {api_keys_env: [TEAM_KEY, {env: Other_Key_2}], admin_keys_env: [ADMIN]}\n"
                       + CONFIG % "ANTHROPIC_API_KEY")
    assert cfg.providers["anthropic"].api_key_env == "ANTHROPIC_API_KEY"
