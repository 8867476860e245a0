"""review35a: sandbox round 16 attacked (bench/RESULTS.md, "Sandbox review 35a"). OS layer alone (no audit hook);
each test failed before its fix."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.security.sandbox_programs import attempt_prelude, host_file
from tierwise.sandbox import SandboxLimits, landlock, run_script

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

# Access mode 3 (O_WRONLY | O_RDWR: "no read, no write", for ioctls) gives a descriptor that is neither readable nor
# writable, so Landlock checks no right on opening it; Linux still asks the user's read and write permission and honours
# O_TRUNC. Directly, and by reopening an O_PATH descriptor through /proc/self/fd.
ACCESS_MODE_3 = """
import fcntl, os, struct
""" + attempt_prelude("DONE") + """
def reopen(path, flags):
    fd = os.open(path, os.O_PATH)
    os.close(os.open(f"/proc/self/fd/{fd}", flags))
for name, path in (("host", HOST), ("bound", BOUND)):
    attempt(name + " file opened with access mode 3 and O_TRUNC", lambda: os.close(os.open(path, 3 | os.O_TRUNC)))
    attempt(name + " file reopened with access mode 3 and O_TRUNC", lambda: reopen(path, 3 | os.O_TRUNC))
    attempt(name + " file opened with access mode 3", lambda: os.close(os.open(path, 3)))
def openat2(path, flags):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    how = struct.pack("QQQ", flags, 0, 0)  # struct open_how: flags, mode, resolve
    fd = libc.syscall(437, -100, path.encode(), how, len(how))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "openat2")
    os.close(fd)
attempt("host file opened by openat2 with access mode 3", lambda: openat2(HOST, 3))
def holder():
    fd = os.open(HOST, 3)
    kind, _, _, _, pid = struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)))
    print("host lock", kind, "held by", pid)
attempt("host file's lock asked", holder)
attempt("own file written with O_TRUNC", lambda: os.close(os.open("mine", os.O_CREAT | os.O_WRONLY | os.O_TRUNC)))
"""


@pytest.fixture
def host_files() -> Iterator[tuple[str, str, str]]:
    """A host program's 0666 file in a folder of /tmp the run is given nothing of (locked by this process, as the
    gateway's ledger is by SQLite), and a 0666 file of a folder bound in read-only (a script agent's, with the
    script)."""
    paths = [host_file("tw-r35a-host-"), host_file("tw-r35a-bound-")]
    host_folder, bound_folder = (os.path.dirname(p) for p in paths)
    script = os.path.join(bound_folder, "agent.py")
    with open(script, "w") as fh:
        fh.write(f"HOST = {paths[0]!r}\nBOUND = {paths[1]!r}\n" + ACCESS_MODE_3)
    yield paths[0], paths[1], script
    shutil.rmtree(host_folder, ignore_errors=True)
    shutil.rmtree(bound_folder, ignore_errors=True)


@pytest.mark.parametrize("asked", [1, 2, 3, None], ids=["abi1", "abi2", "abi3", "kernel"])
async def test_a_run_under_landlock_alone_opens_no_file_with_access_mode_3(
        landlock_alone: None, host_files: tuple[str, str, str], asked: int | None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Round 16 refused O_TRUNC with access mode O_RDONLY (0) below Landlock ABI 3; access mode 3 took its place: with
    it Landlock checks no right at all (the descriptor reads and writes nothing), so under ABI 1 and 2 `os.open(path,
    3 | O_TRUNC)` emptied any file the run's user may write, bound in or not (another run's too, by its path), and on
    every ABI (7 here) it opened files Landlock gives the run nothing of: F_GETLK on such a descriptor told the run
    when a host program (the gateway, its ledger) held a lock, and its PID. Python never opens with access mode 3;
    with the host in sight the filter refuses it (EACCES) on every ABI."""
    import fcntl

    host, bound, script = host_files
    version = landlock.abi() if asked is None else min(asked, landlock.abi())
    monkeypatch.setattr(landlock, "abi", lambda: version)
    with open(host, "r+") as held:
        fcntl.lockf(held, fcntl.LOCK_EX)
        r = await run_script(script, limits=LIMITS, ro_binds=[os.path.dirname(bound)], audit_hook=False)
    assert r.ok, r.summary()
    assert "landlock" in r.layers and "readonly_host" not in r.layers, r.layers
    for path in (host, bound):
        with open(path) as fh:
            assert fh.read() == '{"host": "state"}', (version, path, r.stdout)
    for name in ("host", "bound"):
        for what in ("opened with access mode 3 and O_TRUNC", "reopened with access mode 3 and O_TRUNC",
                     "opened with access mode 3"):
            assert f"{name} file {what} refused 13" in r.stdout, (version, r.stdout)
    assert "host file opened by openat2 with access mode 3 refused 38" in r.stdout, r.stdout
    assert "held by" not in r.stdout and "host file's lock asked refused 13" in r.stdout, r.stdout
    assert "own file written with O_TRUNC DONE" in r.stdout, r.stdout
