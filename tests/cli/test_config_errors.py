"""A config that loads but cannot be built (a route naming an ensemble that is not there, a ledger path
that is not a ledger) stops every command at start with one line naming the file and exit code 2, never a
traceback: the MCP server over stdio and HTTP, `ensemble run`, `serve`. And an unknown key names the
closest valid one, in tierwise.yaml, route policies and ensemble files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tierwise.cli import main as cli

TIERWISE = [sys.executable, "-m", "tierwise.cli"]
REPO = Path(__file__).resolve().parents[2]
BASE = {"providers": {"local": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "locality": "local"}},
        "models": {"qwen": {"provider": "local", "model": "qwen"}}}


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TIERWISE_CONFIG"}
    env["HOME"] = str(tmp_path)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + str(REPO)  # this checkout's tierwise
    return env


@pytest.fixture(params=["ensemble", "ledger"])
def unbuildable(request, tmp_path: Path) -> tuple[Path, str]:
    cfg = {**BASE, "routes": {"main": ["qwen"]}}
    if request.param == "ensemble":
        cfg["routes"]["ens"] = {"policy": "ensemble", "ensemble": "not-there"}
        expected = "route 'ens': no ensemble named 'not-there'"
    else:
        (tmp_path / "a-folder").mkdir()
        cfg["ledger"] = {"path": "a-folder"}
        expected = "cannot open the ledger at"
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, expected


def _one_clear_line(err: str, path: Path, expected: str) -> None:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if "config error" in ln]
    assert len(lines) == 1 and lines[0].startswith(f"tierwise: config error: {path}: "), err
    assert expected in lines[0], err


def test_mcp_over_stdio_stops_at_start_on_a_config_it_cannot_build(unbuildable, tmp_path):
    # Before: the thread that builds the server raised ConfigError; the client's pipe held the handshake
    # and the process died with a traceback and exit code 1 (Claude Code saw the server vanish).
    path, expected = unbuildable
    proc = subprocess.Popen([*TIERWISE, "mcp", "-c", str(path), "--project", str(tmp_path)], cwd=tmp_path,
                            env=_env(tmp_path), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}) + "\n")
    proc.stdin.flush()  # and the pipe stays open, as a client keeps it: no tool call is ever sent
    try:
        rc = proc.wait(timeout=120)
    finally:
        proc.kill()
    err = proc.stderr.read() if proc.stderr else ""
    assert rc == 2, err
    _one_clear_line(err, path, expected)


@pytest.mark.parametrize("argv", [["mcp", "--transport", "http", "--port", "9"],
                                  ["ensemble", "run", "whatever", "--input", "x"],
                                  ["serve", "--port", "0"]])
def test_other_entry_points_say_it_in_one_line(unbuildable, tmp_path, argv, monkeypatch):
    path, expected = unbuildable
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("TIERWISE_MCP_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, [*argv, "-c", str(path)])
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    _one_clear_line(res.output, path, expected)
    assert "bearer token" not in res.output  # nothing announced before the config was known to be good


@pytest.mark.parametrize("snippet, where, near", [
    ({"models": {"qwen": {"provider": "local", "model": "qwen", "contex_window": 100}}},
     "models.qwen.contex_window", "context_window"),
    ({"server": {"prot": 4000}}, "server.prot", "port"),
    ({"server": {"limits": {"max_bodyy_bytes_in_flight": 5}}}, "server.limits.max_bodyy_bytes_in_flight",
     "max_body_bytes_in_flight"),
    ({"providers": {"local": {"kind": "openai", "base_url": "http://x/v1", "timeout": {"connect": 1}}}},
     "providers.local.timeout", "timeouts"),
    ({"routes": {"main": {"policy": "fallback", "target": ["qwen"]}}}, "routes.main.target", "targets"),
    ({"routes": {"r": {"policy": "rules", "rules": [{"match": {"modle": "x"}, "target": "qwen"}],
                       "default": "qwen"}}}, "routes.r.rules[0].match.modle", "model"),
    ({"routes": {"r": {"policy": "reflective", "local": "qwen", "frontier": "qwen", "samplng": {}}}},
     "routes.r.samplng", "sampling"),
    ({"cache": {"enabeld": True}}, "cache.enabeld", "enabled"),
])
def test_an_unknown_key_names_the_closest_valid_one(snippet, where, near):
    from tierwise.config import parse_config
    from tierwise.errors import ConfigError

    cfg = {**BASE, "routes": {"main": ["qwen"]}}
    for k, v in snippet.items():
        cfg[k] = {**cfg.get(k, {}), **v} if k != "routes" else v
    with pytest.raises(ConfigError) as e:
        parse_config(yaml.safe_dump(cfg))
    assert f"{where}: unknown key (did you mean `{near}`?)" in e.value.message, e.value.message


def test_an_unknown_key_far_from_every_valid_one_gets_no_guess():
    from tierwise.config import parse_config
    from tierwise.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        parse_config(yaml.safe_dump({**BASE, "zzzqqq": 1}))
    assert "zzzqqq: unknown key" in e.value.message and "did you mean" not in e.value.message


def test_an_ensemble_files_unknown_key_names_the_closest_valid_one():
    from tierwise.ensembles.schema import parse_ensemble
    from tierwise.errors import ConfigError

    text = yaml.safe_dump({"name": "t", "profiles": {"p": {"model": "qwen", "system_promt": "x"}},
                           "agents": [{"name": "a", "profile": "p", "promt": "go"}]})
    with pytest.raises(ConfigError) as e:
        parse_ensemble(text)
    assert "system_promt: unknown key (did you mean `system_prompt`?)" in e.value.message, e.value.message
    assert "promt: unknown key (did you mean `prompt`?)" in e.value.message, e.value.message


def test_a_command_that_needs_a_config_does_not_blame_an_option_nobody_gave(tmp_path, monkeypatch):
    # Before: `tierwise eval ledger` in a folder without tierwise.yaml said "(from --config) does not exist".
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERWISE_CONFIG", raising=False)
    res = CliRunner().invoke(cli, ["eval", "ledger"])
    assert res.exit_code == 2
    assert f"no tierwise.yaml in {tmp_path}" in res.output and "--config)" not in res.output, res.output


def test_eval_ledger_creates_no_ledger_where_there_is_none(tmp_path, monkeypatch):
    # Before: it created an empty tierwise-ledger.db, then said the ledger had no judged records.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump({**BASE, "routes": {"main": ["qwen"]}}))
    res = CliRunner().invoke(cli, ["eval", "ledger", "-c", str(tmp_path / "tierwise.yaml")])
    assert res.exit_code != 0 and "there is no ledger at" in res.output, res.output
    assert not list(tmp_path.glob("*.db*"))


def test_a_key_given_twice_is_an_error_naming_both_lines():
    # Before: yaml.safe_load kept the last `routes:`, so a second section appended to the file silently
    # dropped every route of the first.
    from tierwise.config import parse_config
    from tierwise.errors import ConfigError

    text = yaml.safe_dump(BASE) + "routes:\n  main: [qwen]\nroutes:\n  other: [qwen]\n"
    first = text.splitlines().index("routes:") + 1
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert f"line {first + 2}: " in e.value.message and f"duplicate key `routes` (first on line {first};" in \
        e.value.message, e.value.message


def test_a_merge_key_may_still_be_overridden():
    from tierwise.config import parse_config

    text = yaml.safe_dump(BASE) + "routes:\n  main: [qwen]\n"
    text = text.replace("models:\n", "models:\n  base: &d {provider: local, model: a}\n  other: {<<: *d, model: b}\n")
    cfg = parse_config(text)
    assert cfg.models["other"].model == "b"


def test_an_ensemble_file_with_a_key_given_twice_is_refused():
    from tierwise.ensembles.schema import parse_ensemble
    from tierwise.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        parse_ensemble("name: t\nagents: []\nagents: []\n")
    assert "duplicate key `agents`" in e.value.message


@pytest.mark.parametrize("kind", ["ollama", "llama.cpp", "vLLM", "lmstudio", "openrouter"])
def test_a_server_named_as_the_kind_says_to_write_kind_openai(kind):
    # Before (newuser27): `kind: ollama` said only "Input should be 'openai' or 'anthropic'"; a newcomer whose
    # server is Ollama or llama.cpp did not learn that `openai` is the kind of every OpenAI-compatible server.
    from tierwise.config import parse_config
    from tierwise.errors import ConfigError

    cfg = {**BASE, "routes": {"main": ["qwen"]}}
    cfg["providers"] = {"local": {"kind": kind, "base_url": "http://127.0.0.1:11434/v1", "locality": "local"}}
    text = yaml.safe_dump(cfg)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.strip().startswith("kind:"))
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert f"line {line}: providers.local.kind:" in e.value.message, e.value.message
    assert "`kind: openai`" in e.value.message and kind in e.value.message, e.value.message


def test_an_unknown_kind_still_lists_the_two_kinds():
    from tierwise.config import parse_config
    from tierwise.errors import ConfigError

    cfg = {**BASE, "routes": {"main": ["qwen"]}}
    cfg["providers"] = {"local": {"kind": "grpc", "base_url": "http://127.0.0.1:9/v1"}}
    with pytest.raises(ConfigError) as e:
        parse_config(yaml.safe_dump(cfg))
    assert "providers.local.kind:" in e.value.message and "'openai' or 'anthropic'" in e.value.message, e.value.message


def test_no_ledger_without_a_config_names_the_config_folder(tmp_path, monkeypatch):
    # session 31 (newuser31): after `tierwise serve -c examples/claude-code.yaml` (its ledger: examples/...),
    # `tierwise report` in the checkout said only "there is no ledger at tierwise-ledger.db yet".
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERWISE_CONFIG", raising=False)
    res = CliRunner().invoke(cli, ["report"])
    assert res.exit_code != 0 and "there is no ledger at" in res.output, res.output
    assert "keeps its ledger in FILE's folder" in res.output and "the same `-c FILE`" in res.output, res.output


@pytest.mark.parametrize("when", ["2026-02-30T00:00:00Z", "2026-12-14T00:00:00+25:00"])
def test_a_date_that_is_none_is_a_config_error_on_its_line(tmp_path, monkeypatch, when):
    """An unquoted date YAML reads as a timestamp (`approvals.store.signing_accept_until`, review35c): one that is
    none went out of PyYAML as a bare ValueError, and `tierwise doctor` printed a traceback."""
    path = tmp_path / "tierwise.yaml"
    text = yaml.safe_dump(BASE) + f"approvals:\n  store:\n    signing_accept_until: {when}\n"
    path.write_text(text)
    monkeypatch.setenv("HOME", str(tmp_path))
    res = CliRunner().invoke(cli, ["doctor", "-c", str(path)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    line = len(text.splitlines())
    assert f"line {line}: " in res.output and f"`{when}` is not a date and time" in res.output, res.output
