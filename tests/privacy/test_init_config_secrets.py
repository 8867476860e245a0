"""The config `tierwise init` writes (and `tierwise serve` runs without one) redacts secrets before they leave for
the frontier model: its rules route Claude Code's and Codex's turns, and a `.env` the agent read went to Claude key
by key (session 36, newuser36: `tierwise doctor` warned of the very config `init` had just written, and the README's
quick start ran it as is). Real HTTP, the official SDK, doubles upstream; only the addresses are swapped in."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from tests.gateway.conftest import ant
from tests.privacy.support import SECRET, leaked
from tierwise.cli import main
from tierwise.starter import starter_yaml

DOTENV = f"Here is my .env:\nANTHROPIC_API_KEY={SECRET}\nAWS_REGION=eu-north-1\n"


def init_config(openai_url: str, anthropic_url: str) -> dict:
    found = {"local": [("llamacpp", 8080, openai_url + "/v1", "tiny")], "anthropic_key": True, "openai_key": False}
    cfg = yaml.safe_load(starter_yaml(found))
    cfg["providers"]["anthropic"]["base_url"] = anthropic_url
    cfg["ledger"]["path"] = "ledger.db"
    return cfg


def test_a_main_turn_reaches_the_frontier_model_with_the_key_as_a_placeholder(gateway, openai_up, anthropic_up,
                                                                             monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-real")  # the gateway's own upstream key
    g = gateway(init_config(openai_up.url, anthropic_up.url))
    r = ant(g).messages.create(model="claude-opus-4-8", max_tokens=50,  # Claude Code's main model: route main
                               messages=[{"role": "user", "content": DOTENV}])
    assert r.content
    assert len(anthropic_up.requests) == 1 and not openai_up.requests  # the frontier model answered
    sent = anthropic_up.requests[0].raw
    assert not leaked(sent, [SECRET]), sent[:400]
    assert b"<SECRET_1>" in sent and b"AWS_REGION=eu-north-1" in sent  # the rest of the file stays readable


def test_doctor_has_nothing_to_say_about_secrets_on_the_init_config(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-real")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert CliRunner().invoke(main, ["init", "--local", "http://127.0.0.1:9/v1"]).exit_code == 0
    out = CliRunner().invoke(main, ["doctor"]).output
    assert "no privacy class catches secrets" not in out, out
    assert "NER" not in out  # secrets only: no NER model loads for it
