"""Session 35's attack round on the sandbox (bench/RESULTS.md, "Sandbox round 16"). OS layer alone (no audit hook);
each test failed before its fix."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.security.sandbox_programs import attempt_prelude, host_file
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
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
    path = host_file("tw-r16-")
    yield path
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)


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


# Two threads of one run exclude each other through `flock` on two descriptors of one file of its own (a
# `filelock`-style lock): the second asks while the first holds it.
THREAD_FLOCK = """
import errno, fcntl, os, threading
held, asked = threading.Event(), threading.Event()
said = {}
def lock(name, flags, first):
    fd = os.open("counter", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        if not first:
            held.wait(10)
        fcntl.flock(fd, flags)
        said[name] = "HELD"
        if first:
            held.set()
            asked.wait(10)
    except OSError as e:
        said[name] = errno.errorcode.get(e.errno, str(e.errno))
        held.set()
    finally:
        if not first:
            asked.set()
        os.close(fd)
a = threading.Thread(target=lock, args=("first", fcntl.LOCK_EX, True))
b = threading.Thread(target=lock, args=("second", fcntl.LOCK_EX | fcntl.LOCK_NB, False))
a.start(); b.start(); a.join(); b.join()
print("first", said["first"], "second", said["second"])
"""
THREADS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256, threads=True)


async def test_threads_of_a_run_are_never_granted_a_flock_that_does_not_exclude(mode: str) -> None:  # noqa: F811
    """Since round 15 a run with threads took no lock with `flock` (a channel between runs through any file both may
    open, 8 of 8 bits): it answered 0 with nothing taken, so two of its own threads each "held" LOCK_EX on one file at
    once (790-799 of 800 rounds, review34a) and a program locking between its threads raced in silence. A filter sees
    a descriptor, not whose file it is, so the lock cannot be the kernel's; with threads it is refused now, ENOSYS (as
    a filesystem without flock: `filelock` 3.30+ then falls back to its SoftFileLock, an O_EXCL marker file, which
    excludes in the run's folder). A
    one-task run has no thread to race and keeps the 0 (`test_sandbox_review33a.py`)."""
    r = await run_python(THREAD_FLOCK, limits=THREADS, audit_hook=False)
    assert r.ok, r.summary()
    assert "HELD" not in r.stdout, r.stdout
    assert r.stdout.strip() == "first ENOSYS second ENOSYS", r.stdout


def test_the_run_of_a_gateway_that_is_not_root_truncates_no_file_of_the_gateways_under_landlock_abi_2() -> None:
    """The same for a gateway that is not root where no user namespace can be made (its run is its own user, Landlock
    alone): under a ruleset made for ABI 2 the run emptied the gateway's 0600 ledger (2,000 bytes -> 0)."""
    import subprocess
    import sys

    from tests.security import test_weak_sandbox_own_user as own

    gateway = own.GATEWAY.replace("bwrap.bwrap_path = lambda: None", "bwrap.bwrap_path = lambda: None\n"
                                  "from tierwise.sandbox import landlock\nkernel_abi = landlock.abi()\n"
                                  "landlock.abi = lambda: min(2, kernel_abi)")
    assert gateway != own.GATEWAY
    user, src, prepared = own._as_gateway_user()
    home = tempfile.mkdtemp(prefix="tw-r16-home-")
    try:
        ledger = os.path.join(home, "ledger.db")
        with open(ledger, "w") as fh:
            fh.write("the gateway's ledger" * 100)
        os.chmod(ledger, 0o600)
        for path in (home, ledger):
            os.chown(path, user.uid, user.gid)
        program = f"import os\ntry:\n    os.truncate({ledger!r}, 0)\n    print('LEDGER TRUNCATED')\n" \
                  "except OSError as e:\n    print('ledger refused', e.errno)\n"
        r = subprocess.run([sys.executable, "-c", gateway, src, program, "no-user-namespace"], capture_output=True,
                           text=True, timeout=180, cwd="/tmp", env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                           preexec_fn=lambda: own.identity.switch(prepared))
        size = os.path.getsize(ledger)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"RUNS_AS the gateway's own user (uid {user.uid})" in r.stdout and "'landlock'" in r.stdout, r.stdout
    assert size == 2000 and "ledger refused 13" in r.stdout, (size, r.stdout)


OPEN_TRUNCATE = """
import os
""" + attempt_prelude("DONE") + """
attempt("bound file opened read-only with O_TRUNC", lambda: os.close(os.open(BOUND, os.O_RDONLY | os.O_TRUNC)))
attempt("own file opened for writing with O_TRUNC", lambda: os.close(os.open("mine", os.O_CREAT | os.O_WRONLY | os.O_TRUNC)))
print("read", len(open(BOUND).read()))
"""


@pytest.mark.parametrize("asked", [1, 2, 3, None], ids=["abi1", "abi2", "abi3", "kernel"])
async def test_a_run_under_landlock_alone_empties_no_file_it_may_only_read(
        landlock_alone: None, asked: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """`open(path, O_RDONLY | O_TRUNC)` truncates on Linux wherever the user may write the file, and Landlock below ABI
    3 checks only the read right of such an opening: a run emptied a file its user may write in a folder it may only
    read (bound in for a script agent; for the run of a gateway that is not root, its interpreter's installation in
    its home is one). The filter now refuses O_TRUNC without a write mode there (EACCES), and `openat2`, whose flags it
    cannot read (ENOSYS: nothing of Python's calls it)."""
    from tierwise.sandbox import run_script

    version = landlock.abi() if asked is None else min(asked, landlock.abi())
    monkeypatch.setattr(landlock, "abi", lambda: version)
    bound = host_file("tw-r16-bound-", '{"bound": "state"}', "shared.json")
    folder = os.path.dirname(bound)
    try:
        script = os.path.join(folder, "agent.py")
        with open(script, "w") as fh:
            fh.write(f"BOUND = {bound!r}\n" + OPEN_TRUNCATE)
        r = await run_script(script, limits=LIMITS, ro_binds=[folder], audit_hook=False)
        with open(bound) as fh:
            left = fh.read()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert r.ok, r.summary()
    assert "landlock" in r.layers and "readonly_host" not in r.layers, r.layers
    assert left == '{"bound": "state"}', (version, r.stdout)
    assert "bound file opened read-only with O_TRUNC refused 13" in r.stdout, r.stdout
    assert "own file opened for writing with O_TRUNC DONE" in r.stdout and "read 18" in r.stdout, r.stdout
