"""A credential written as a URL's whole userinfo (`https://TOKEN@host`: GitHub's token URLs, a Redis URL whose
user name is its password, a vendor's OTLP endpoint) is a secret like `user:password@`. Before (session 24's
attack-secrets left it): neither the scrubber's shapes nor the config's known secrets held it, and `tierwise
doctor` printed it in "cannot connect to http://TOKEN@host/v1"; an upstream's error repeating it went to the
client and the log. Real HTTP on loopback, the openai SDK as client."""

from __future__ import annotations

import base64
import logging
import secrets
import sqlite3
from pathlib import Path

import openai
import pytest
import yaml
from click.testing import CliRunner

from tests.doubles import Fail, OpenAIDouble
from tests.harness import GatewayServer, make_config
from tierwise.cli import main as cli
from tierwise.secret_scrub import SecretScrubber, config_secrets


def _token(tag: str) -> str:
    return tag + secrets.token_hex(12)


def test_a_token_as_the_whole_userinfo_is_known_in_every_config_url(tmp_path: Path) -> None:
    base, redis, otlp, budgets = _token("gh"), _token("rd"), _token("ot"), _token("bd")
    cfg = make_config({
        "providers": {"p": {"kind": "openai", "base_url": f"https://{base}@example.invalid/v1"},
                      "q": {"kind": "openai", "base_url": "https://git@example.invalid/v1"}},
        "cache": {"enabled": False, "redis_url": f"redis://{redis}@127.0.0.1:6379/9"},
        "budgets": {"store": {"backend": "redis", "redis_url": f"rediss://{budgets}@127.0.0.1:6379/9"}},
        "observability": {"tracing": {"endpoint": f"https://{otlp}@127.0.0.1:4318/v1/traces"}},
    }, tmp_path)
    found = config_secrets(cfg)
    assert {base, redis, otlp, budgets} <= found, found
    assert "git" not in found  # a user name is not a credential: only a token-like one given alone


@pytest.mark.parametrize(("text", "kept"), [
    ("clone https://ghx0a1b2c3d4e5f6a7b8@github.example/org/repo.git", "@github.example/org/repo.git"),
    ("redis://a1b2c3d4e5f6a7b8c9@cache:6379/0 refused", "@cache:6379/0 refused"),
    ("https://user:hunter2hunter2@host/x", "https://user:"),
])
def test_a_token_or_password_in_any_url_is_redacted_by_shape(text: str, kept: str) -> None:
    out = SecretScrubber().scrub(text)  # no secret registered: the shape alone
    assert "[redacted]" in out and kept in out, out
    assert "a1b2c3d4e5f6" not in out and "0a1b2c3d4e5f" not in out and "hunter2" not in out, out


@pytest.mark.parametrize("text", ["ssh://git@github.com/x", "redis://default@cache:6379", "postgres://postgres@db/x",
                                  "mailto://someone@example.com", "https://averylongusername@host"])
def test_a_plain_user_name_in_a_url_is_left_alone(text: str) -> None:
    assert SecretScrubber().scrub(text) == text


def test_doctor_and_a_gateway_keep_a_url_token_out_of_their_output(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    tok = _token("tk")
    up = OpenAIDouble().start()
    host = up.url.split("://", 1)[1]
    data = {"ledger": {"path": str(tmp_path / "ledger.db")},
            "providers": {"up": {"kind": "openai", "base_url": f"http://{tok}@{host}/v1"},
                          "dead": {"kind": "openai", "base_url": f"http://{tok}@127.0.0.1:1/v1"}},
            "models": {"m": {"provider": "up", "model": "qwen"}, "d": {"provider": "dead", "model": "x"}},
            "cache": {"enabled": False, "redis_url": f"redis://{tok}@127.0.0.1:6379/9"}}
    g = GatewayServer(make_config(data, tmp_path)).start()
    client = []
    try:
        def echo(r):  # an upstream repeating the credential it was sent (aiohttp sends the userinfo as Basic)
            sent = base64.b64decode(r.headers["authorization"].removeprefix("Basic ")).decode().rstrip(":")
            return Fail(500, f"user {sent} is not allowed")
        up.script(echo)
        oc = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="x", max_retries=0))
        with pytest.raises(openai.APIError) as e:
            oc.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        client.append(str(e.value))
        g.flush()
        assert up.requests, "the double was not asked: this proves nothing"
    finally:
        g.stop()
        up.stop()
    cfg = tmp_path / "tw.yaml"
    cfg.write_text(yaml.safe_dump(data))
    doctor = CliRunner().invoke(cli, ["doctor", "-c", str(cfg)]).output
    assert "cannot connect to http://[redacted]@127.0.0.1:1/v1" in doctor, doctor
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        ledger = "\n".join(repr(row) for row in db.execute("SELECT * FROM requests"))
    sinks = {"client": "\n".join(client), "log": caplog.text, "doctor": doctor, "ledger": ledger}
    assert "is not allowed" in sinks["client"], sinks["client"]
    leaked = [name for name, text in sinks.items() if tok[:12] in text or tok[-12:] in text]
    assert not leaked, {name: sinks[name][:2000] for name in leaked}
