"""`tierwise claude --url` takes an http(s) URL only. `tierwise claude --url $URL -- -p hi` with URL empty made `--`
the URL, and the user read "no gateway answers at -- (ValueError): start it first" about a gateway that was running
(session 36, newuser36)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tierwise.cli import main


@pytest.mark.parametrize("url", ["--", "-p", "127.0.0.1:4000", "ftp://127.0.0.1:4000", "http://"])
def test_a_value_that_is_no_http_url_is_said_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["claude", "--url", url, "-p", "hi"])
    assert r.exit_code == 2, r.output
    assert "--url" in r.output and "not an http(s) URL" in r.output, r.output
    assert "no gateway answers" not in r.output
