"""`tierwise doctor` against a real llama-server: a `context_window` larger than what the server
holds per request (its `-c` divided by its slots, `meta.n_ctx` in its model list) is named, since
every longer prompt would be a refused call before a route moves on."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from tests.engines.tiny_gguf import CONTEXT
from tierwise.cli import main


def doctor_output(tmp_path, llama_server, window: int) -> str:
    cfg = tmp_path / f"tw-{window}.yaml"
    cfg.write_text(yaml.safe_dump({
        "providers": {"llamacpp": {"kind": "openai", "base_url": llama_server.url + "/v1", "locality": "local"}},
        "models": {"local": {"provider": "llamacpp", "model": "local", "context_window": window}}}))
    return CliRunner().invoke(main, ["doctor", "-c", str(cfg)]).output


def test_doctor_names_a_context_window_larger_than_llama_servers(tmp_path, llama_server):
    out = doctor_output(tmp_path, llama_server, 32768)
    [line] = [ln for ln in out.splitlines() if "context_window 32,768" in ln]
    assert line.startswith("! model local:") and f"holds {CONTEXT:,} tokens" in line
    assert f"context_window: {CONTEXT}" in line
    assert "context_window" not in doctor_output(tmp_path, llama_server, CONTEXT)


def test_init_pointed_at_llama_server_writes_the_window_and_model_it_serves(tmp_path, llama_server, monkeypatch):
    # `tierwise init` only looked on 11434/8080/1234 and wrote a 32,768-token window: a server on another port
    # meant editing the file, and doctor then warned about the window. `--local URL` asks the server.
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["init", "--local", llama_server.url + "/v1"])
    assert r.exit_code == 0 and f"{CONTEXT:,} tokens per request" in r.output, r.output
    cfg = yaml.safe_load((tmp_path / "tierwise.yaml").read_text())
    [(name, provider)] = [(n, p) for n, p in cfg["providers"].items() if p["locality"] == "local"]
    assert provider["base_url"] == llama_server.url + "/v1"
    assert cfg["models"]["local"]["provider"] == name and cfg["models"]["local"]["context_window"] == CONTEXT
    out = CliRunner().invoke(main, ["doctor"]).output
    assert f"✓ provider {name} (openai, local): reached" in out, out
    assert f"context_window {CONTEXT:,} but" not in out, out  # the window matches the server's


def test_doctor_names_a_context_window_smaller_than_llama_servers(tmp_path, llama_server):
    # A user restarts llama-server with more context and keeps the old config: longer prompts kept going to the
    # frontier although the server could now answer them, and doctor said nothing.
    out = doctor_output(tmp_path, llama_server, CONTEXT // 2)
    [line] = [ln for ln in out.splitlines() if f"context_window {CONTEXT // 2:,} but" in ln]
    assert line.startswith("! model local:") and f"now holds {CONTEXT:,} tokens" in line
    assert f"Fix: context_window: {CONTEXT}" in line


def test_init_and_doctor_say_a_claude_code_subagent_turn_does_not_fit(tmp_path, llama_server, monkeypatch):
    # init wrote the server's 4,096-token window and rules sending Claude Code's subagents to it, and said
    # nothing: every subagent turn (~11,000 tokens) went to the frontier, seen only in `tierwise trace`.
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["init", "--local", llama_server.url + "/v1"])
    assert r.exit_code == 0
    assert f"warning: {CONTEXT:,} tokens per request is less than a Claude Code subagent turn" in r.output, r.output
    out = CliRunner().invoke(main, ["doctor"]).output
    [line] = [ln for ln in out.splitlines() if "smaller than Claude Code's subagent turns" in ln]
    assert line.startswith(f"! model local: context_window {CONTEXT:,}")
    assert "rule claude-code-subagents of route main (subagent)" in line


def test_init_and_doctor_say_when_the_model_itself_caps_the_context(tmp_path, llama_server, monkeypatch):
    # The tiny model is trained for CONTEXT tokens: llama-server holds no more per request whatever -c asks
    # (`-c 32768` gives `n_ctx_slot = 4096`). Before, both said "restart llama-server with -c 32768", and a
    # user who did saw the same warning again.
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["init", "--local", llama_server.url + "/v1"])
    assert f"Its model was trained for {CONTEXT:,} tokens, and llama-server holds no more" in r.output, r.output
    assert "-c 32768" not in r.output, r.output
    out = CliRunner().invoke(main, ["doctor"]).output
    [line] = [ln for ln in out.splitlines() if "smaller than Claude Code's subagent turns" in ln]
    assert f"its model was trained for {CONTEXT:,} tokens" in line and "-c 32768" not in line, line
    # session 31 (newuser31): the fix ended "..., and give its context_window": half an instruction
    assert line.endswith("then set the model's context_window to its size (`tierwise init --force` reads it from "
                         "the server)"), line
