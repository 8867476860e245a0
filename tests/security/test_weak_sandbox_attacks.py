"""The weak sandbox (no bubblewrap, `sandbox: {allow_weak: true}`) runs the code as the gateway's
own user, in its PID space, on its filesystem (a root gateway's: read-only but for its folder). What the audit hook cannot see (no event exists)
the seccomp filter of the strong sandbox, loaded between fork and exec, refuses: FIFOs and device
nodes (os.mkfifo, os.mknod), and every call aimed at another process (the gateway's rlimits,
priority, CPUs, signals through a pidfd). Each attack runs with the hook on and off."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import stat
import tempfile
from pathlib import Path

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude, weak_only  # noqa: F401 (weak_only: autouse fixture)
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, run_python

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)
BOTH = pytest.mark.parametrize("audit_hook", [True, False], ids=["hook", "os-only"])


NODES = """
import os, stat
""" + attempt_prelude("MADE") + """attempt("fifo", lambda: os.mkfifo(OUTSIDE + "/fifo"))
attempt("node", lambda: os.mknod(OUTSIDE + "/node", 0o600 | stat.S_IFREG))
attempt("device", lambda: os.mknod("disk", 0o600 | stat.S_IFBLK, os.makedev(8, 0)))
attempt("fifo_here", lambda: os.mkfifo("pipe"))
"""


@BOTH
async def test_no_fifo_or_device_node_anywhere(tmp_path: Path, audit_hook: bool) -> None:
    """No audit event exists for os.mkfifo and os.mknod: the hook alone let a FIFO be made where a
    gateway file will be opened (its open then blocks for ever), and, for a gateway running as
    root, the block device of a disk inside the run's folder."""
    code = f"OUTSIDE = {str(tmp_path)!r}\n" + NODES
    r = await run_python(code, limits=LIMITS, audit_hook=audit_hook)
    assert r.ok, r.stderr
    assert "MADE" not in r.stdout, r.stdout
    assert "seccomp" in r.layers, r.layers
    assert r.stdout.count("refused 1") == 4, r.stdout  # EPERM: the filter's, not the kernel's
    assert not any(stat.S_ISFIFO(p.lstat().st_mode) or p.name in ("fifo", "node") for p in tmp_path.iterdir())


AIMED_AT_THE_GATEWAY = """
import os, resource, signal
gateway = os.getppid()
""" + attempt_prelude("DONE") + """hard = resource.getrlimit(resource.RLIMIT_MSGQUEUE)[1]  # (harmless to the test's process for a moment)
attempt("prlimit", lambda: resource.prlimit(gateway, resource.RLIMIT_MSGQUEUE, (12345, hard)))
attempt("nice", lambda: os.setpriority(os.PRIO_PROCESS, gateway, 19))
attempt("affinity", lambda: os.sched_setaffinity(gateway, {0}))
attempt("pidfd", lambda: signal.pidfd_send_signal(os.pidfd_open(gateway), signal.SIGUSR1))
resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))  # its own: still allowed
print("own", resource.getrlimit(resource.RLIMIT_NOFILE))
"""


@BOTH
async def test_the_code_cannot_reach_the_gateway_process(audit_hook: bool) -> None:
    """Same user, same PID space: without the filter the code set the gateway's own open-file
    limit to 5 (it then could not open the run's folder to remove it), its nice value to 19 and its
    CPUs to one, and could signal it through a pidfd (os.kill is the hook's; pidfds had no check)."""
    signalled: list[int] = []
    before = (resource.getrlimit(resource.RLIMIT_MSGQUEUE), os.getpriority(os.PRIO_PROCESS, 0),
              os.sched_getaffinity(0))
    old = signal.signal(signal.SIGUSR1, lambda signum, frame: signalled.append(signum))
    try:
        r = await run_python(AIMED_AT_THE_GATEWAY, limits=LIMITS, audit_hook=audit_hook)
        after = (resource.getrlimit(resource.RLIMIT_MSGQUEUE), os.getpriority(os.PRIO_PROCESS, 0),
                 os.sched_getaffinity(0))
    finally:
        resource.setrlimit(resource.RLIMIT_MSGQUEUE, before[0])
        if os.getpriority(os.PRIO_PROCESS, 0) != before[1] and os.geteuid() == 0:
            os.setpriority(os.PRIO_PROCESS, 0, before[1])
        os.sched_setaffinity(0, before[2])
        signal.signal(signal.SIGUSR1, old)
    assert after == before
    assert not signalled
    assert r.ok, r.stderr
    assert "DONE" not in r.stdout, r.stdout
    assert "own (32, 32)" in r.stdout, r.stdout


AIMED_AT_THE_USER = """
import os
""" + attempt_prelude("DONE") + """attempt("nice-user", lambda: os.setpriority(os.PRIO_USER, 0, 19))
attempt("nice-group", lambda: os.setpriority(os.PRIO_PGRP, 0, 19))
mine = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 1)
os.setpriority(os.PRIO_PROCESS, 0, mine)  # its own: still allowed
print("own", os.getpriority(os.PRIO_PROCESS, 0) == mine)
"""


@BOTH
async def test_the_code_cannot_renice_every_process_of_its_user(audit_hook: bool) -> None:
    """`setpriority(PRIO_USER, 0, ...)` names no PID (0: the caller's user): the filter's PID test let it
    through, and every process of the code's user, the gateway itself when it is that user, went to nice 19
    (session 22 review)."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        r = await run_python(AIMED_AT_THE_USER, limits=LIMITS, audit_hook=audit_hook)
        after = os.getpriority(os.PRIO_PROCESS, 0)
    finally:
        if os.getpriority(os.PRIO_PROCESS, 0) != before and os.geteuid() == 0:
            os.setpriority(os.PRIO_PROCESS, 0, before)
    assert after == before
    assert r.ok, r.stderr
    assert "DONE" not in r.stdout, r.stdout
    assert r.stdout.count("refused 1") == 2, r.stdout  # EPERM: the filter's
    assert "own True" in r.stdout, r.stdout


C_LEVEL_FILES = """
def attempt(name, fn):
    try:
        print(name, fn())
    except PermissionError as e:
        print(name, "refused", e)
def attach():
    import sqlite3
    db = sqlite3.connect(":memory:")
    db.execute(f"ATTACH DATABASE '{OUTSIDE}/ledger.db' AS ledger")
    return db.execute("SELECT x FROM ledger.t").fetchall()
def history():
    import readline
    readline.add_history("written by the sandbox")
    readline.write_history_file(OUTSIDE + "/written.txt")
    return "WRITTEN"
attempt("sqlite", attach)
attempt("readline", history)
"""


async def test_modules_that_open_files_in_c_are_refused(tmp_path: Path) -> None:
    """sqlite3's ATTACH and readline's history files open files in C with no audit event: with the
    hook alone guarding files, the code read a database outside its folder (the gateway's ledger is
    one) and wrote a file of its choosing outside it."""
    import sqlite3

    db = sqlite3.connect(tmp_path / "ledger.db")
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES ('LEDGER-ROW')")
    db.commit()
    db.close()
    r = await run_python(f"OUTSIDE = {str(tmp_path)!r}\n" + C_LEVEL_FILES, limits=LIMITS)
    assert "LEDGER-ROW" not in r.stdout and "WRITTEN" not in r.stdout, r.stdout
    assert not (tmp_path / "written.txt").exists()
    assert r.stdout.count("refused") == 2, (r.stdout, r.stderr)


async def test_sqlite_in_memory_still_works_in_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # bubblewrap back: there the mount namespace, not the hook, keeps files out
    sandbox.status.cache_clear()
    r = await run_python("import sqlite3\nprint(sqlite3.connect(':memory:').execute('SELECT 6 * 7').fetchone()[0])",
                         limits=LIMITS)
    assert r.ok and r.stdout.strip() == "42", r.summary()
    assert "bwrap" in r.layers


NATIVE = """
import importlib.machinery, importlib.util, math
with open(math.__file__, "rb") as src, open("native.so", "wb") as dst:  # any shared object it writes
    dst.write(src.read())
loader = importlib.machinery.ExtensionFileLoader("math", os.getcwd() + "/native.so")
try:
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("math", loader))
    print("LOADED", module.sqrt(4))
except PermissionError as e:
    print("refused", e)
"""


async def test_native_code_written_in_the_folder_is_not_loaded() -> None:
    """A shared object the code writes into its folder and imports runs native code, out of every
    hook's sight: in the weak sandbox one read the gateway's /proc/<pid>/environ (its keys)."""
    r = await run_python("import os\n" + NATIVE, limits=LIMITS)
    assert "LOADED" not in r.stdout, r.stdout
    assert "refused sandbox: import" in r.stdout, (r.stdout, r.stderr)


async def test_the_gateway_s_folder_is_hidden_from_a_weak_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A root gateway's weak run sees the host read-only, but it saw all of it: a world-readable `.env` (the usual
    place of provider keys) in the folder the gateway was started in was read, OS layer alone. That folder and the
    gateway's home are now hidden under an empty tmpfs, as bubblewrap hides them (unless they hold the run's
    folder or the interpreter, which the run needs)."""
    project = tempfile.mkdtemp(prefix="tw-r5-project-")
    try:
        os.chmod(project, 0o755)
        with open(os.path.join(project, ".env"), "w") as fh:
            fh.write("OPENAI_API_KEY=sk-ROUND5-DOTENV")
        os.chmod(os.path.join(project, ".env"), 0o644)
        monkeypatch.chdir(project)
        r = await run_python(f"ENV = {project + '/.env'!r}\n" + attempt_prelude("READ")
                             + "attempt('dotenv', lambda: print(open(ENV).read()))\n", limits=LIMITS, audit_hook=False)
    finally:
        shutil.rmtree(project)
    if "readonly_host" not in r.layers:
        unavailable("the weak run sees the host read-only only where the gateway can make a mount namespace")
    assert r.ok, r.stderr
    assert "sk-ROUND5" not in r.stdout and "dotenv refused 2" in r.stdout, r.stdout
