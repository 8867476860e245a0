"""Session 35's attack round on the sandbox (bench/RESULTS.md, "Sandbox round 16"). OS layer alone (no audit hook);
each test failed before its fix."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.security.sandbox_programs import attempt_prelude
from tierwise.sandbox import SandboxLimits, landlock, run_python

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

TRUNCATE = """
import os
""" + attempt_prelude("DONE") + """
attempt("host file truncated", lambda: os.truncate(PLANTED, 0))
with open("mine", "w") as fh:  # (open with O_TRUNC: Landlock's write right, its own folder)
    fh.write("own file")
print("own file rewritten", open("mine").read())
attempt("own file truncated by path", lambda: os.truncate("mine", 3))
"""


@pytest.fixture
def world_writable() -> Iterator[str]:
    """A world-writable file of a host program (a 0666 log, a lock, a socket-adjacent state file) in a folder of /tmp."""
    folder = tempfile.mkdtemp(prefix="tw-r16-")
    os.chmod(folder, 0o755)
    path = os.path.join(folder, "state.json")
    with open(path, "w") as fh:
        fh.write('{"host": "state"}')
    os.chmod(path, 0o666)
    yield path
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("asked", [1, 2, 3, None], ids=["abi1", "abi2", "abi3", "kernel"])
async def test_a_run_under_landlock_alone_truncates_no_host_file_whatever_the_landlock_abi(
        landlock_alone: None, world_writable: str, asked: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Landlock handles `truncate(2)` by path only from ABI 3 (Linux 6.2): a kernel with ABI 1 or 2 (5.13-6.1, as
    Ubuntu 22.04's 5.15 and Debian 12's 6.1) lets any file the run's user may write be truncated, wherever it is: a
    run as the sandbox's user emptied a host program's 0666 file, and the run of a gateway that is not root (its own
    user) any file of the gateway's (its ledger). The kernel here has ABI 7; a ruleset made for ABI 1 or 2 (the rights
    it knows) is what such a kernel enforces. Where the ABI is older than 3 the filter now refuses `truncate` by path
    (EACCES, what Landlock answers from ABI 3); opening with O_TRUNC (`open(path, "w")`) is the write right, which
    every ABI checks, and stays in the run's own folder. (A kernel with an older ABI than asked runs its own.)"""
    version = landlock.abi() if asked is None else min(asked, landlock.abi())
    monkeypatch.setattr(landlock, "abi", lambda: version)
    r = await run_python(f"PLANTED = {world_writable!r}\n" + TRUNCATE, limits=LIMITS, audit_hook=False)
    assert r.ok, r.summary()
    assert "landlock" in r.layers and "readonly_host" not in r.layers, r.layers
    with open(world_writable) as fh:
        assert fh.read() == '{"host": "state"}', (version, r.stdout)
    assert "host file truncated refused 13" in r.stdout, r.stdout
    assert "own file rewritten own file" in r.stdout, r.stdout
    # (below ABI 3 the filter cannot tell the run's own file from the host's: both by path are refused)
    expected = "DONE" if version >= 3 else "refused 13"
    assert f"own file truncated by path {expected}" in r.stdout, r.stdout
