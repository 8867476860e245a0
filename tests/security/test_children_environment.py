"""What the gateway execs gets none of its keys (review38c). An exec'd child is dumpable again, so its
/proc/<pid>/environ is readable by every process of the gateway's user (a trusted host script among them) while it
runs: the sandbox's keeper and clean-up process already got an empty environment, but `bwrap --version` (the probe at
start) and the `rm -rf` fallback of a clean-up (up to 300 s) got the gateway's whole environment, provider keys included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tierwise.sandbox import backend, bwrap, cleanup

KEY = "sk-proj-Zq8vN3kLm2Pp9Rr4Tt6Yy1Uu0"


def _dumping(folder: Path, name: str) -> tuple[Path, Path]:
    """An executable `name` in `folder` that writes its environment to a file; (the executable, the file)."""
    dump = folder / f"{name}.env"
    exe = folder / name
    # (bwrap's probe runs it again, empty environment: only the first call, `--version` or rm's, is kept)
    exe.write_text(f"#!/bin/sh\n[ -e '{dump}' ] || env > '{dump}'\necho 'bubblewrap 0.0'\n")
    exe.chmod(0o755)
    return exe, dump


def test_the_bwrap_version_probe_gets_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    exe, dump = _dumping(tmp_path, "bwrap")
    monkeypatch.setattr(bwrap, "bwrap_path", lambda: str(exe))
    backend.status.cache_clear()
    try:
        backend.status()
    finally:
        backend.status.cache_clear()
    assert dump.exists()
    assert KEY not in dump.read_text()


def test_the_rm_fallback_of_a_clean_up_gets_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _, dump = _dumping(bin_dir, "rm")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")

    def refused(path: str, entries: int) -> None:
        raise PermissionError(13, "refused")

    monkeypatch.setattr(cleanup, "_remove", refused)
    (tmp_path / "left").mkdir()
    cleanup.remove_tree(str(tmp_path / "left"))
    assert dump.exists()
    assert KEY not in dump.read_text()
