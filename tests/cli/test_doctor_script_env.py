"""`tierwise doctor` says what secrets `ensembles.script_env` gives trusted host scripts, and which ones its prefixes
leave out (review38c: a prefix passes no secret), naming variables, never their values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tierwise.cli import main

TOKEN = "tok-5b0c2e7a9d1f4e63a8"
KEY = "sk-proj-Zq8vN3kLm2Pp9Rr4Tt6Yy1Uu0"


def test_doctor_names_the_secrets_script_env_passes_and_leaves_out(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TW_SE_OPENAI_KEY", KEY)
    monkeypatch.setenv("MYTOOL_TOKEN", TOKEN)
    monkeypatch.setenv("MYTOOL_HOST", "db.internal")
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump({
        "ledger": {"enabled": False},
        "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "locality": "local"}},
        "models": {"m": {"provider": "p", "model": "m"}}, "routes": {"main": ["m"]},
        "ensembles": {"trusted": ["tools.yaml"], "script_env": ["TW_SE_OPENAI_KEY", "MYTOOL_*"]}}))
    out = CliRunner().invoke(main, ["doctor", "-c", str(tmp_path / "tierwise.yaml")]).output
    assert "ensembles.script_env passes TW_SE_OPENAI_KEY to every trusted script" in out, out
    assert "prefixes match MYTOOL_TOKEN" in out and "MYTOOL_HOST" not in out, out
    assert KEY not in out and TOKEN not in out
