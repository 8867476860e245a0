"""`tierwise init --local URL`: a local server that is not on Ollama's, llama.cpp's or LM Studio's usual port
(vLLM on 8000, a second llama-server) gets the config written for it, with the model it serves: vLLM refuses
every model name but its own, so the starter's `local` (or Ollama's `qwen2.5:7b`) was a 404 on every call."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from tests.doubles import OpenAIDouble
from tierwise.cli import main

VLLM_MODELS = ["BAAI/bge-m3-embed", "Qwen/Qwen2.5-7B-Instruct"]  # an embedding model listed first


def test_init_local_configures_the_model_the_server_serves(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with OpenAIDouble(models=VLLM_MODELS) as up:
        r = CliRunner().invoke(main, ["init", "--local", up.url + "/v1"])
        assert r.exit_code == 0, r.output
        assert "model Qwen/Qwen2.5-7B-Instruct" in r.output
        cfg = yaml.safe_load((tmp_path / "tierwise.yaml").read_text())
        local = cfg["models"]["local"]
        assert cfg["providers"][local["provider"]]["base_url"] == up.url + "/v1"
        assert local["model"] == "Qwen/Qwen2.5-7B-Instruct"
        out = CliRunner().invoke(main, ["doctor"]).output
        assert "is not among the models" not in out and "reached; 2 model(s) listed" in out, out


def test_init_local_says_when_nothing_answers_there_and_refuses_a_bare_host(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["init", "--local", "http://127.0.0.1:9/v1"])
    assert r.exit_code == 0 and "did not answer: is the server running, and is /v1 in the URL?" in r.output
    r = CliRunner().invoke(main, ["init", "--force", "--local", "127.0.0.1:8000"])
    assert r.exit_code == 2 and "an http(s) URL such as http://127.0.0.1:8000/v1" in r.output


def test_without_local_init_says_how_to_point_it_at_another_server(tmp_path, monkeypatch):
    from tierwise import starter

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(starter, "port_open", lambda *a, **k: False)  # as on a machine with no server running
    r = CliRunner().invoke(main, ["init"])
    assert r.exit_code == 0 and "`tierwise init --force --local http://HOST:PORT/v1`" in r.output


def test_init_local_takes_the_base_url_out_of_a_pasted_endpoint(tmp_path, monkeypatch):
    # Before: `--local http://127.0.0.1:8000/v1/chat/completions` (the address a server's docs show) was written
    # as the base_url: init warned that .../chat/completions/models did not answer, and every call went to
    # .../chat/completions/chat/completions (404).
    monkeypatch.chdir(tmp_path)
    with OpenAIDouble(models=VLLM_MODELS) as up:
        for pasted in ["/v1/chat/completions", "/v1/models/", "/v1/"]:
            r = CliRunner().invoke(main, ["init", "--force", "--local", up.url + pasted])
            assert r.exit_code == 0 and "did not answer" not in r.output, r.output
            assert ("--local: using " + up.url + "/v1, the base URL" in r.output) == (pasted != "/v1/"), r.output
            cfg = yaml.safe_load((tmp_path / "tierwise.yaml").read_text())
            assert cfg["providers"][cfg["models"]["local"]["provider"]]["base_url"] == up.url + "/v1", pasted
            assert cfg["models"]["local"]["model"] == "Qwen/Qwen2.5-7B-Instruct"
