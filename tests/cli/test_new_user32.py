"""What a first-time user met in session 32's new-user round (newuser32): each test was seen failing before its fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import tierwise

SRC = str(Path(tierwise.__file__).resolve().parents[1])


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_python_dash_m_tierwise_is_the_tierwise_command(tmp_path: Path) -> None:
    # Before: "No module named tierwise.__main__; 'tierwise' is a package and cannot be directly executed".
    res = _run("-m", "tierwise", "--help", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Usage: tierwise " in res.stdout and "serve" in res.stdout, res.stdout


def test_the_mcp_manifest_is_used_only_with_the_sdk_it_was_recorded_with(tmp_path: Path) -> None:
    # load_manifest reads the installed SDK's release from its dist-info folder (not importlib.metadata,
    # whose import was a quarter of what `tierwise mcp` ran before its first answer).
    import json
    from importlib import metadata

    from tierwise import mcp_fast

    here = tmp_path / "m.json"
    for sdk, used in ((metadata.version("mcp"), True), ("0.0.1", False), ("../mcp-2", False), (None, False)):
        here.write_text(json.dumps({"sdk": sdk, "versions": {}}))
        assert (mcp_fast.load_manifest(here) is not None) is used, sdk
