"""Session 31's attack round on the sandbox (bench/RESULTS.md, "Sandbox attack round 12"). OS layer alone (no audit
hook); each test failed before its fix."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, bwrap, cleanup, run_python

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


PACKAGE_READ = attempt_prelude("READ") + """
for path in PATHS:
    attempt(path, lambda: open(path, "rb").read())
"""


async def test_a_run_reads_no_package_of_a_python_2_or_pypy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The system's package folders were hidden by name for Python 3 alone (`python3*/dist-packages`,
    `python3*/site-packages`): a Python 2's or PyPy's installed packages beside them (`/usr/lib/python2.7/dist-packages`,
    `/usr/lib/pypy3/dist-packages`, `/usr/local/lib/pypy3.10/site-packages`) were read. Any folder of installed packages
    one level into a system folder is hidden now. (A folder of the test's own plays a system folder here.)"""
    sandbox.configure()
    if not sandbox.status().strong:
        unavailable(f"no bubblewrap sandbox here: {sandbox.status().problem}")
    await _reads_no_python_2_or_pypy_package(monkeypatch)


async def test_a_run_under_landlock_alone_reads_no_package_of_a_python_2_or_pypy(
    landlock_alone: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same with Landlock alone: its rules go around those folders too."""
    await _reads_no_python_2_or_pypy_package(monkeypatch)


def plant_packages(system: str) -> list[str]:
    """A readable `module.py` in a python2.7 and two pypy package folders below `system` (made readable): their
    paths."""
    os.chmod(system, 0o755)
    paths = []
    for folder in ("python2.7/dist-packages", "pypy3/dist-packages", "pypy3.10/site-packages"):
        os.makedirs(os.path.join(system, folder), mode=0o755)
        paths.append(os.path.join(system, folder, "module.py"))
        with open(paths[-1], "w") as fh:
            fh.write("KEY = 1\n")
        os.chmod(paths[-1], 0o644)
    return paths


async def _reads_no_python_2_or_pypy_package(monkeypatch: pytest.MonkeyPatch) -> None:
    system = tempfile.mkdtemp(prefix="tw-round12-system-")
    try:
        paths = plant_packages(system)
        standard = os.path.join(system, "pypy3.10", "lib-python.py")  # (beside the packages: still shown)
        with open(standard, "w") as fh:
            fh.write("x = 1\n")
        os.chmod(standard, 0o644)
        monkeypatch.setattr(bwrap, "SYSTEM_PATHS", (*bwrap.SYSTEM_PATHS, system))
        bwrap.installed_packages.cache_clear()
        bwrap.layout.cache_clear()
        r = await run_python(f"PATHS = {[*paths, standard]!r}\n" + PACKAGE_READ, limits=LIMITS, audit_hook=False)
    finally:
        bwrap.installed_packages.cache_clear()
        bwrap.layout.cache_clear()
        shutil.rmtree(system)
    assert r.returncode == 0, r.summary()
    assert f"{standard} READ" in r.stdout, r.stdout
    for path in paths:
        assert f"{path} refused" in r.stdout, r.stdout


def test_the_process_removing_a_big_folder_runs_at_the_lowest_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `cleanup.ENTRIES` entries the rest of a run's folder is removed by a process of its own (session 30), which
    ran at the gateway's own CPU priority: a run that filled its folder had it compete with the gateway for a core
    (7-9 s of unlinking here, every such run). Nice 19 now. (The process's program is replaced by one that says its
    priority; ENTRIES 5.)"""
    monkeypatch.setattr(cleanup, "ENTRIES", 5)
    monkeypatch.setattr(cleanup, "_source", lambda: "import os\nprint('NICE', os.getpriority(os.PRIO_PROCESS, 0))\n")
    said: list[bytes] = []
    real = subprocess.run

    def run(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        done = real(*args, **kwargs)
        said.append(done.stdout)
        return done

    monkeypatch.setattr(cleanup.subprocess, "run", run)
    folder = tmp_path / "run"
    folder.mkdir()
    for n in range(20):
        (folder / str(n)).write_text("x")
    cleanup.remove_tree(str(folder))
    assert said == [b"NICE 19\n"], said
