"""The MCP HTTP server's bearer token is a secret like the gateway's keys: once `load_token` has it (from the
token file, freshly generated, or from $TIERWISE_MCP_TOKEN with the spaces it strips), the scrubber knows it,
so a log line, a span's text or an error message that repeats it says `[redacted]` (session 25, secrets25:
the token file's value was never registered)."""

from __future__ import annotations

import logging
import os
import secrets

import pytest

from tierwise import secret_scrub
from tierwise.mcp_http import TOKEN_ENV, TOKEN_FILE, load_token


def _exits_redact(token: str, caplog: pytest.LogCaptureFixture) -> None:
    assert token not in secret_scrub.scrub(f"tool failed: bad header Bearer-ish {token}!")  # errors, spans
    assert token not in secret_scrub.scrub(f"{token[:20]}")  # a cut piece of it too
    with caplog.at_level(logging.INFO, logger="tierwise.mcp"):
        logging.getLogger("tierwise.mcp").warning("client sent %s as an argument", token)
    assert token not in caplog.text and "[redacted]" in caplog.text


def test_the_token_read_from_the_file_is_scrubbed(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    token = "q" + secrets.token_hex(24)  # hex: no key shape catches it; only its registration can
    path = tmp_path / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    assert load_token(tmp_path) == (token, path, False)
    _exits_redact(token, caplog)


def test_a_generated_token_is_scrubbed(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    token, path, fresh = load_token(tmp_path / "home")
    assert fresh and path is not None and path.read_text().strip() == token
    _exits_redact(token, caplog)


def test_an_environment_token_with_a_trailing_newline_is_scrubbed(monkeypatch, caplog):
    token = "e" + secrets.token_hex(24)
    monkeypatch.setenv(TOKEN_ENV, token + "\n")  # a secret mounted from a file: env_secrets skips whitespace
    assert load_token()[0] == token
    _exits_redact(token, caplog)
