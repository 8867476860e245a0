"""Session 30's attack round on the sandbox (bench/RESULTS.md, "Sandbox attack round 11"). OS layer alone (no audit
hook); each test failed before its fix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.harness import unavailable
from tests.security.capability_probe import CAPABILITIES
from tests.security.sandbox_programs import attempt_prelude
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tests.security.test_weak_sandbox_own_user import _as_gateway_user
from tierwise.sandbox import SandboxLimits, backend, bwrap, cleanup, identity, run_python, weak
from tierwise.sandbox.backend import SandboxUnavailable
from tierwise.verifiers import code as code_mod

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

def _root_with_setpcap() -> None:
    """The gateway is root and may empty a bounding set (CAP_SETPCAP): where it may not, nothing here changes it."""
    if os.geteuid() != 0:
        unavailable("the gateway is not root: its runs switch no user (their bounding set is the gateway's)")
    with open("/proc/self/status") as fh:
        effective = int(next(line for line in fh if line.startswith("CapEff:")).split()[1], 16)
    if not effective >> 8 & 1:
        unavailable("this root gateway has no CAP_SETPCAP")


async def test_a_run_keeps_no_capability_an_exec_could_grant(mode: str) -> None:  # noqa: F811
    """A weak run switched from root kept the whole bounding set (CapBnd 1fffeffffff: every capability an exec could
    still grant; bubblewrap's runs, `--cap-drop ALL`, 0). no_new_privs already keeps exec from granting one; emptied
    now as bubblewrap does."""
    _root_with_setpcap()
    r = await run_python(CAPABILITIES, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    assert "CAPBND 0 CAPAMB 0 NNP 1" in r.stdout, r.stdout
    assert "GROUPS []" in r.stdout and "UID (0," not in r.stdout, r.stdout


async def test_the_compiler_keeps_no_capability_an_exec_could_grant(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiler of `python_code` (review29a: the sandbox's user, seccomp, Landlock) kept the whole bounding set
    too. Its uid, gid and groups are the sandbox user's alone, no ambient capability, no_new_privs."""
    _root_with_setpcap()
    if weak.filter_loader(False) is None or backend.weak_run_as() is None:
        unavailable("the compiler is not confined here (no libseccomp, or no switch of user)")
    user = backend.weak_run_as()
    assert user is not None
    monkeypatch.setattr(code_mod, "_COMPILE", "import sys\nsys.stdin.buffer.read()\n" + CAPABILITIES)
    said = await code_mod._compile_in_child("x = 1\n") or ""
    assert "CAPBND 0 CAPAMB 0 NNP 1" in said, said
    assert f"UID ({user.uid}, {user.uid}, {user.uid}) GID ({user.gid}, {user.gid}, {user.gid}) GROUPS []" in said, said


FILL_THE_FOLDER = """
import os
for d in range(FOLDERS):
    os.mkdir(f"d{d}")
    for f in range(FILES):
        os.close(os.open(f"d{d}/{f}", os.O_CREAT | os.O_WRONLY, 0o600))
print("MADE", FOLDERS * FILES)
"""


async def test_a_run_s_full_folder_costs_the_gateway_no_cpu_to_remove(
    landlock_alone: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With Landlock alone the run's folder is on the host's /dev/shm, and the gateway removed whatever the run left
    there in a worker thread of its own, with the GIL: a run that filled it until its memory cgroup killed it left
    381,365 empty files, 2.09 s of the gateway's CPU (8.3 s of a thread) for every such run. Past `cleanup.ENTRIES`
    entries the rest is now `rm -rf`'s, a process of its own (played here with 60 entries and 400 files)."""
    monkeypatch.setattr(cleanup, "ENTRIES", 60)
    folders: list[str] = []
    unlinked: list[str] = []
    real_remove, real_unlink = weak.remove_tree, os.unlink

    def remove(path: str) -> bool:
        folders.append(path)
        return real_remove(path)

    def unlink(path: str, *, dir_fd: int | None = None) -> None:
        unlinked.append(path)
        real_unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(weak, "remove_tree", remove)
    monkeypatch.setattr(cleanup.os, "unlink", unlink)
    try:
        r = await run_python("FOLDERS, FILES = 4, 100\n" + FILL_THE_FOLDER, limits=LIMITS, audit_hook=False)
    except SandboxUnavailable as e:
        unavailable(f"no weak sandbox with Landlock alone here: {e}")
    assert "MADE 400" in r.stdout, r.summary()
    assert folders and not os.path.lexists(folders[0]), folders
    assert len(unlinked) <= 60, len(unlinked)


def test_a_small_folder_is_still_removed_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The common case stays in the gateway (no process started): a few files and folders, symlinks not followed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    run = tmp_path / "run"
    (run / "a" / "b").mkdir(parents=True)
    (run / "a" / "b" / "f").write_text("y")
    (run / "a" / "link").symlink_to(outside)
    started: list[object] = []
    monkeypatch.setattr(cleanup.subprocess, "run", lambda *a, **k: started.append(a))
    assert cleanup.remove_tree(str(run))
    assert not started and (outside / "keep").read_text() == "x"


def test_a_big_folder_with_a_write_only_subfolder_is_removed_by_a_gateway_that_is_not_root() -> None:
    """The rest of a big folder is this walk's in a process of its own, not `rm -rf`'s: a weak run of a gateway that is
    not root is the gateway's user, and `rm -rf` as that user cannot empty a folder the run made write-only (mode
    0300, files in it); the walk makes each folder usable first. (A user of the host plays the gateway here.)"""
    if not os.path.isdir("/dev/shm"):
        unavailable("no /dev/shm")
    user, src, prepared = _as_gateway_user()
    uid = user.uid
    top = tempfile.mkdtemp(prefix="tw-round11-", dir="/dev/shm")
    try:
        tree = os.path.join(top, "run")
        os.mkdir(tree)
        hidden = os.path.join(tree, "write-only")
        os.mkdir(hidden)
        open(os.path.join(hidden, "inside"), "w").close()
        os.chmod(hidden, 0o300)
        for n in range(30):  # (made after it: a tmpfs lists the newest first, so the walk's count ends before it)
            open(os.path.join(tree, f"f{n}"), "w").close()
        for folder, names, files in os.walk(top):
            for name in [folder, *(os.path.join(folder, n) for n in names + files)]:
                os.lchown(name, uid, uid)
        program = ("import sys\nfrom tierwise.sandbox import cleanup\ncleanup.ENTRIES = 5\n"
                   "print('GONE' if cleanup.remove_tree(sys.argv[1]) else 'LEFT')\n")
        r = subprocess.run([sys.executable, "-c", program, tree], capture_output=True, text=True, timeout=120,
                           env={"PYTHONPATH": src}, preexec_fn=lambda: identity.switch(prepared), cwd="/")
        assert r.stdout.strip() == "GONE", (r.stdout, r.stderr)
        assert not os.path.lexists(tree)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _a_system_package_file() -> str:
    """A file of an installed Python package in the system's folders (Debian's python3-* packages, pip's)."""
    for folder in bwrap.installed_packages():
        for top, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(top, name)
                if not os.path.islink(path) and os.access(path, os.R_OK):
                    return path
    unavailable("no installed Python package in the system's folders here (no /usr/lib/python3/dist-packages)")
    raise AssertionError  # (unavailable raises)


SYSTEM_PACKAGES = attempt_prelude("READ") + """
attempt("package file", lambda: open(TARGET, "rb").read())
import json, sqlite3, ssl, zoneinfo
print("STDLIB", zoneinfo.ZoneInfo("UTC"))
"""


async def _reads_no_system_package() -> None:
    target = _a_system_package_file()
    r = await run_python(f"TARGET = {target!r}\n" + SYSTEM_PACKAGES, limits=LIMITS, audit_hook=False)
    assert "package file refused" in r.stdout and "READ" not in r.stdout, (target, r.stdout, r.stderr)
    assert "STDLIB UTC" in r.stdout, r.stderr


async def test_a_run_reads_no_package_of_the_system_s_pythons(mode: str) -> None:  # noqa: F811
    """Only the interpreter's own `site-packages` was hidden: a run read the packages of the system's Pythons in the
    system's folders bound in (`/usr/lib/python3/dist-packages`, 77 here, and pip's `/usr/local/lib/python3.X/
    dist-packages`), where a Debian interpreter's packages, the gateway's among them, all are. Hidden now as
    site-packages is (an empty tmpfs); the standard library still imports."""
    await _reads_no_system_package()


async def test_a_run_under_landlock_alone_reads_no_package_of_the_system_s_pythons(landlock_alone: None) -> None:
    """The same with Landlock alone: its rules go around those folders (their files EACCES)."""
    try:
        await _reads_no_system_package()
    except SandboxUnavailable as e:
        unavailable(f"no weak sandbox with Landlock alone here: {e}")
