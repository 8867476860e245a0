"""Session 25's attack round on the sandbox (bench/RESULTS.md, "Sandbox attack round 6"): what a weak run sees of the
host once the host is read-only. It saw every folder its user may read (/tmp, /etc, /run, /var, /home, /opt, the
deployment's folders) and the host's /dev: pseudo-terminals for the taking and, run by a gateway that is not root,
its user's own terminals. Now it sees what a bubblewrap run sees (the system's libraries, the interpreter, its folder
and the folders bound in) and five devices. OS layer alone (no audit hook); each test failed before the fix."""

from __future__ import annotations

import os
import pty
import shutil
import tempfile

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude, weak_only  # noqa: F401 (the fixture: weak runs)
from tests.security.test_weak_sandbox_own_user import GATEWAY_UID, _gateway_runs, _user_namespaces
from tierwise.sandbox import SandboxLimits, backend, run_python

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

HOST_FILES = """
import os
""" + attempt_prelude("READ") + """
def read(path):
    return lambda: open(path).read()
attempt("planted", read(PLANTED))
attempt("etc", lambda: os.listdir("/etc") or (_ for _ in ()).throw(OSError(2, "empty")))
attempt("run", lambda: os.listdir("/run") or (_ for _ in ()).throw(OSError(2, "empty")))
attempt("pty", lambda: os.close(os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)))
# (stat, which Landlock does not check: what the mounts show, whatever else refuses the opening)
print("dev", sorted(p for p in ("null", "zero", "full", "random", "urandom", "ptmx", "pts", "kmsg", "shm", "fuse")
                    if os.path.exists("/dev/" + p)))
print("host", [p for p in ("/etc/passwd", "/var/log", PLANTED) if os.path.exists(p)])
with open("/dev/null", "w") as fh:
    fh.write("to nowhere")
print("urandom", len(open("/dev/urandom", "rb").read(8)))
print("own folder", open("mine", "w").write("x"))
"""


async def test_a_weak_run_sees_of_the_host_what_a_bubblewrap_run_sees() -> None:
    """A world-readable file another program left in a folder of /tmp (a config with a key, another gateway's
    files), /etc and /run were the weak run's to read (the host was read-only, not hidden), and /dev/ptmx handed it
    pseudo-terminals (kernel.pty.max is the machine's: 4,096). Now those folders are empty covers and /dev holds
    null, zero, full, random and urandom."""
    if not backend.weak_read_only_host():
        unavailable("the weak sandbox cannot make a mount namespace here: its host is not read-only, nor hidden")
    folder = tempfile.mkdtemp(prefix="tw-r6-other-")
    try:
        os.chmod(folder, 0o755)
        planted = os.path.join(folder, "settings.env")
        with open(planted, "w") as fh:
            fh.write("OPENAI_API_KEY=sk-ROUND6-PLANTED\n")
        os.chmod(planted, 0o644)
        r = await run_python(f"PLANTED = {planted!r}\n" + HOST_FILES, limits=LIMITS, audit_hook=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert r.ok, r.stderr
    assert "READ" not in r.stdout and "sk-ROUND6" not in r.stdout, r.stdout
    for name in ("planted", "pty"):
        assert f"{name} refused 2" in r.stdout, r.stdout
    assert "etc refused" in r.stdout and "run refused" in r.stdout, r.stdout  # (empty covers; Landlock: EACCES)
    assert "host []" in r.stdout, r.stdout
    # (and a /dev/shm of its own since session 37, bubblewrap's since session 36: tests/security/test_sandbox_round18.py)
    assert "dev ['full', 'null', 'random', 'shm', 'urandom', 'zero']" in r.stdout, r.stdout
    assert "urandom 8" in r.stdout and "own folder 1" in r.stdout, r.stdout


TERMINAL = """
import os
""" + attempt_prelude("OPENED") + """
attempt("terminal", lambda: os.close(os.open(TERMINAL, os.O_RDWR | os.O_NOCTTY)))
attempt("pty", lambda: os.close(os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)))
"""


def test_a_weak_run_of_a_gateway_that_is_not_root_cannot_open_its_user_s_terminal() -> None:
    """The run of a gateway that is not root is the gateway's user, and a terminal of that user (the operator's
    shell that started `tierwise serve`) is its to open: it could read what is typed there (a password, a key) and
    write to it. Here the terminal is a pseudo-terminal the test gives the gateway's uid."""
    if not _user_namespaces():
        unavailable("this kernel lets no unprivileged user make a user namespace: a weak run of a gateway that is "
                    "not root sees the host as its user does")
    leader, follower = pty.openpty()
    try:
        terminal = os.ttyname(follower)
        os.chown(terminal, GATEWAY_UID, GATEWAY_UID)
        out = _gateway_runs(f"TERMINAL = {terminal!r}\n" + TERMINAL)
    finally:
        os.close(follower)
        os.close(leader)
    assert "OPENED" not in out, out
    assert "terminal refused 2" in out and "pty refused 2" in out, out


WITHOUT_NAMESPACES = """
import os
""" + attempt_prelude("DONE") + """
def write(path):
    def into():
        with open(path, "w") as fh:
            fh.write("for the gateway's user to find")
    return into
attempt("its user's file written", write(os.path.join(HOME, ".bashrc")))
attempt("its user's private file read", lambda: open(os.path.join(HOME, "ledger.db")).read())
attempt("world-readable file read", lambda: open("/etc/passwd").read())
attempt("processes listed", lambda: os.listdir("/proc"))
# (Landlock bounds what is opened, not metadata: these went through it, the private file made 0644, the home 0777)
attempt("its user's private file made readable", lambda: os.chmod(os.path.join(HOME, "ledger.db"), 0o644))
attempt("its user's home made writable", lambda: os.chmod(HOME, 0o777))
attempt("its user's file's times", lambda: os.utime(os.path.join(HOME, "ledger.db"), (0, 0)))
attempt("own folder", write("mine.txt"))
attempt("own folder read", lambda: open("mine.txt").read())
def own_mode():
    with open("mine.txt") as fh:
        os.fchmod(fh.fileno(), 0o600)
attempt("own file's mode by its descriptor", own_mode)
"""


def test_a_weak_run_without_namespaces_opens_nothing_of_the_host_but_what_it_needs() -> None:
    """A gateway that is not root on a kernel that lets it make no user namespace (here: simulated by the gateway
    reporting no read-only host) had no mount to bound its weak runs: they wrote its user's files (its `.bashrc`),
    read its private files (0600: a ledger) and the host's, and listed every process. Landlock needs neither a
    namespace nor a privilege: the run opens only the system's libraries, the interpreter and its own folder. Landlock
    does not bound metadata: through it the run made the private file 0644 and the home 0777; on such a writable
    host the filter refuses chmod, chown and times by path (by descriptor they stay: only what it could open)."""
    from tierwise.sandbox import landlock

    if landlock.abi() < 1:
        unavailable("this kernel has no Landlock (Linux 5.13+, `lsm=...,landlock`): a weak run of a gateway that is "
                    "not root and cannot make a user namespace opens what its user may")
    home = tempfile.mkdtemp(prefix="tw-r6-home-")
    try:
        with open(os.path.join(home, "ledger.db"), "w") as fh:
            fh.write("the gateway's ledger")
        os.chmod(os.path.join(home, "ledger.db"), 0o600)
        for path in (home, os.path.join(home, "ledger.db")):
            os.chown(path, GATEWAY_UID, GATEWAY_UID)
        out = _gateway_runs(f"HOME = {home!r}\n" + WITHOUT_NAMESPACES, user_namespace=False)
        assert not os.path.exists(os.path.join(home, ".bashrc")), out
        assert os.stat(os.path.join(home, "ledger.db")).st_mode & 0o777 == 0o600, out
        assert os.stat(home).st_mode & 0o777 == 0o700, out
    finally:
        shutil.rmtree(home, ignore_errors=True)
    for name in ("its user's file written", "its user's private file read", "world-readable file read",
                 "processes listed"):
        assert f"{name} refused 13" in out, out
    for name in ("its user's private file made readable", "its user's home made writable", "its user's file's times"):
        assert f"{name} refused 1" in out, out  # (the filter: no chmod, chown or times by path on a writable host)
    assert "own folder DONE" in out and "own folder read DONE" in out, out
    assert "own file's mode by its descriptor refused 1" in out, out  # (review25a: DESCRIPTOR_METADATA)
    assert "landlock" in out, out  # the layer is claimed


ORDINARY_FILE_WORK = """
import os, shutil
""" + attempt_prelude("DONE") + """
with open("out.txt", "w") as fh:
    fh.write("the check's output")
attempt("copy", lambda: shutil.copy("out.txt", "c1.txt"))
attempt("copy2", lambda: shutil.copy2("out.txt", "c2.txt"))
attempt("copytree", lambda: (os.mkdir("d"), shutil.copyfile("out.txt", "d/x"), shutil.copytree("d", "d2")))
attempt("chmod", lambda: os.chmod("out.txt", 0o600))
attempt("utime", lambda: os.utime("out.txt"))
"""


async def test_a_weak_run_switched_to_its_own_user_on_a_writable_host_copies_files_with_shutil(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """review25a: round 6 refused chmod, chown and times by path to every weak run on a writable host, so a root
    gateway without CAP_SYS_ADMIN (a container's default: no mount namespace, runs switched to uid 65534) failed
    ordinary checks: shutil.copy, copy2 and copytree (copymode, copystat) raised EPERM on the run's own files. A run
    switched to a user of its own changes only what that user owns; the refusal stays for a run that is the
    gateway's own user (the test above)."""
    if os.geteuid() != 0 or backend.weak_run_as() is None:
        unavailable("the gateway is not root or cannot switch a weak run to another user")
    monkeypatch.setattr(backend, "weak_read_only_host", lambda: False)  # as without CAP_SYS_ADMIN
    try:
        r = await run_python(ORDINARY_FILE_WORK, limits=LIMITS, audit_hook=False)
    finally:
        monkeypatch.undo()  # (before the fixture's configure(), which clears the real function's cache)
    assert r.ok, r.stderr
    assert "readonly_host" not in r.layers and "unprivileged" in r.layers, r.layers
    for name in ("copy", "copy2", "copytree", "chmod", "utime"):
        assert f"{name} DONE" in r.stdout, r.stdout


BOUND_FOLDER_GATEWAY = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, backend, bwrap, run_script
bwrap.bwrap_path = lambda: None
sandbox.configure(allow_weak=True)
backend.weak_read_only_host = lambda: False  # as on a kernel that lets no unprivileged user make a user namespace
import tempfile
from tierwise.sandbox import weak
weak.folder_root = tempfile.gettempdir  # as where /dev/shm is a small tmpfs (test_weak_sandbox_own_user.GATEWAY)
r = asyncio.run(run_script(sys.argv[2] + "/check.py", limits=SandboxLimits(wall_s=60), ro_binds=[sys.argv[2]],
                           audit_hook=False))
print("LAYERS", r.layers)
print(r.stdout, r.stderr)
"""

MODES_BY_DESCRIPTOR = """
import os
""" + attempt_prelude("DONE") + """
here = os.path.dirname(os.path.abspath(__file__))
def by_descriptor(path):
    def made():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fchmod(fd, 0o777)
        finally:
            os.close(fd)
    return made
attempt("its script made world-writable", by_descriptor(os.path.join(here, "check.py")))
attempt("its folder made world-writable", by_descriptor(here))
"""


def test_a_weak_run_without_namespaces_cannot_open_up_its_user_s_folders_by_a_descriptor() -> None:
    """review25a: Landlock lets such a run open for reading the folders bound in (an ensemble's scripts) and the
    interpreter's installation, often its user's (pyenv or uv in the home), and round 6 left chmod by descriptor:
    `fchmod` on a read-only descriptor made the operator's check script and its folder 0777, for any local user to
    rewrite what the next runs execute. On a writable host a run of the gateway's own user changes no mode."""
    import subprocess
    import sys

    from tests.security.test_weak_sandbox_own_user import _as_gateway_user
    from tierwise.sandbox import identity, landlock

    if landlock.abi() < 1:
        unavailable("this kernel has no Landlock: such a run opens what its user may, its folders' modes included")
    _, src, prepared = _as_gateway_user()
    folder = tempfile.mkdtemp(prefix="tw-r25a-scripts-")
    try:
        with open(os.path.join(folder, "check.py"), "w") as fh:
            fh.write(MODES_BY_DESCRIPTOR)
        os.chmod(folder, 0o755)
        os.chmod(os.path.join(folder, "check.py"), 0o644)
        for path in (folder, os.path.join(folder, "check.py")):
            os.chown(path, GATEWAY_UID, GATEWAY_UID)
        r = subprocess.run([sys.executable, "-c", BOUND_FOLDER_GATEWAY, src, folder], capture_output=True, text=True,
                           timeout=180, cwd="/tmp", env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                           preexec_fn=lambda: identity.switch(prepared))
        modes = (os.stat(folder).st_mode & 0o777, os.stat(os.path.join(folder, "check.py")).st_mode & 0o777)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert r.returncode == 0 and "landlock" in r.stdout, (r.stdout, r.stderr[-2000:])
    assert modes == (0o755, 0o644), (oct(modes[0]), oct(modes[1]), r.stdout)
    for name in ("its script made world-writable", "its folder made world-writable"):
        assert f"{name} refused 1" in r.stdout, r.stdout
