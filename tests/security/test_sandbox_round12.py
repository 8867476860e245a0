"""Session 31's attack round on the sandbox (bench/RESULTS.md, "Sandbox attack round 12"). OS layer alone (no audit
hook); each test failed before its fix."""

from __future__ import annotations

from tests.security.sandbox_programs import attempt_prelude
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise.sandbox import SandboxLimits, run_python

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

# A file of the system's shared libraries every mode shows (the interpreter's own library folder: bound in bwrap, shown
# again in the weak sandbox, readable under Landlock), put into a pipe's slots three ways.
PIN = attempt_prelude("PINNED") + """
import ctypes, os, shutil
libc = ctypes.CDLL(None, use_errno=True)
def tee():
    r2, w2 = os.pipe()
    os.write(w, b"x")
    if libc.tee(r, w2, 1, 0) < 0:
        raise OSError(ctypes.get_errno(), "tee")
source = os.open(os.__file__, os.O_RDONLY)
r, w = os.pipe()
attempt("splice", lambda: os.splice(source, w, 1, offset_src=0))
attempt("sendfile", lambda: os.sendfile(w, source, 0, 1))
attempt("tee", tee)
shutil.copyfile(os.__file__, "copy.py")
print("COPY", os.path.getsize("copy.py") == os.path.getsize(os.__file__))
"""


def _refused_all(stdout: str) -> None:
    assert "PINNED" not in stdout, stdout
    for name in ("splice", "sendfile", "tee"):
        assert f"{name} refused" in stdout, stdout
    assert "COPY True" in stdout, stdout  # (shutil falls back to read/write when its first sendfile fails)


async def test_a_run_holds_no_page_cache_in_its_pipes(mode: str) -> None:  # noqa: F811
    """splice, tee and sendfile into a pipe put references to page-cache folios of shared files in its slots, kept
    from reclaim while the pipe lasts and charged to no limit of the run (session 30: 416 slots through 26 pipes, every
    mode). Refused now; shutil's copies still work."""
    r = await run_python(PIN, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    _refused_all(r.stdout)


async def test_a_run_under_landlock_alone_holds_no_page_cache_in_its_pipes(landlock_alone: None) -> None:
    """The same with the host in sight (no mount namespace): the run reads the host's own files."""
    r = await run_python(PIN, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    _refused_all(r.stdout)
