"""Session 32's attack round on the sandbox (bench/RESULTS.md, "Sandbox attack round 13"). OS layer alone (no audit
hook); each test failed before its fix."""

from __future__ import annotations

import asyncio
import multiprocessing
import os

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tests.security.test_sandbox_review31a import _cpu_cgroup
from tierwise.sandbox import SandboxLimits, cgroup, run_python, runner

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

# Directory notification (dnotify) on folders of the standard library every mode shows, and a lease on a file of the
# run's own folder: each tells the run when another process reads or opens a file there.
NOTIFY = attempt_prelude("GRANTED") + """
import fcntl, os, signal
signal.signal(signal.SIGIO, lambda *a: None)
stdlib = os.path.dirname(os.__file__)
attempt("notify", lambda: fcntl.fcntl(os.open(stdlib, os.O_RDONLY), fcntl.F_NOTIFY, fcntl.DN_ACCESS | fcntl.DN_MULTISHOT))
open("own", "w").close()
attempt("lease", lambda: fcntl.fcntl(os.open("own", os.O_RDONLY), fcntl.F_SETLEASE, fcntl.F_RDLCK))
attempt("getfd", lambda: fcntl.fcntl(0, fcntl.F_GETFD))
open("other", "w").close()  # (not "own": the run's own open for writing would wait out its own lease)
attempt("lock", lambda: fcntl.lockf(open("other", "r+"), fcntl.LOCK_EX | fcntl.LOCK_NB))
"""


def _refused(stdout: str) -> None:
    assert "notify refused 1" in stdout, stdout  # EPERM: the filter's answer
    assert "lease refused 1" in stdout, stdout
    assert "getfd GRANTED" in stdout and "lock GRANTED" in stdout, stdout  # (other fcntl commands stay)


async def test_a_run_sets_no_directory_notification_or_lease(mode: str) -> None:  # noqa: F811
    """`fcntl(F_NOTIFY)` (dnotify) on a folder of the standard library and `F_SETLEASE` on a file were granted in every
    mode: each is a signal to the run whenever another process reads (DN_ACCESS) or opens a file there. Refused now
    (EPERM), as inotify and fanotify were; Python never asks for either. Other fcntl commands and locks stay."""
    r = await run_python(NOTIFY, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    _refused(r.stdout)


async def test_a_run_under_landlock_alone_sets_no_directory_notification_or_lease(landlock_alone: None) -> None:
    """The same with the host in sight (no mount namespace)."""
    r = await run_python(NOTIFY, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    _refused(r.stdout)


# A run that watches the folders of the standard library's `email` package (its sources and its compiled files) for
# reads, says it is ready, and after a line on its stdin how many reads it was told of.
WATCHER = """
import fcntl, os, signal, sys
told = 0
def on_read(*_):
    global told
    told += 1
signal.signal(signal.SIGIO, on_read)
package = os.path.join(os.path.dirname(os.__file__), "email")
try:
    for folder in (package, os.path.join(package, "__pycache__")):
        if os.path.isdir(folder):
            fcntl.fcntl(os.open(folder, os.O_RDONLY), fcntl.F_NOTIFY, fcntl.DN_ACCESS | fcntl.DN_MULTISHOT)
except OSError as e:
    print("refused", e.errno, flush=True)
    raise SystemExit
print("ready", flush=True)
sys.stdin.readline()
print("told", told, flush=True)
"""


@pytest.mark.parametrize("mode", ["bwrap"], indirect=True)
async def test_a_run_is_told_nothing_of_another_runs_imports(mode: str) -> None:  # noqa: F811
    """Two runs at once: one watched the standard library's `email` folders with dnotify while the other imported
    `email.message`; the watcher was told of each file read (23 reads in bubblewrap, 15 in the weak sandbox, 28 under
    Landlock alone, bench/RESULTS.md): which modules the other run (another client's check, the checker of a split
    check) used and when, and a channel between two runs. Now the watcher is told nothing."""
    async with runner.open_python(WATCHER, limits=LIMITS, audit_hook=False) as watcher:
        assert watcher.proc is not None and watcher.proc.stdout is not None and watcher.proc.stdin is not None, \
            watcher.refused
        first = (await watcher.proc.stdout.readline()).decode().split()
        other = await run_python("import email.message, email.parser\nprint('imported')", limits=LIMITS,
                                 audit_hook=False)
        assert other.stdout.strip() == "imported", other.summary()
        told = None
        if first == ["ready"]:
            watcher.proc.stdin.write(b"\n")
            await watcher.proc.stdin.drain()
            told = (await watcher.proc.stdout.readline()).decode().split()
    assert first == ["refused", "1"], (first, told)


UP = "import time\nprint('up', flush=True)\ntime.sleep(20)"


async def _run_saying_its_cpu_cgroup(said: multiprocessing.connection.Connection | None = None) -> str | None:
    async with runner.open_python(UP, limits=LIMITS, audit_hook=False) as live:
        assert live.proc is not None and live.proc.stdout is not None, live.refused
        assert await live.proc.stdout.readline() == b"up\n"
        group = _cpu_cgroup(live.proc.pid)  # (joined between fork and exec)
        if said is not None:
            said.send(group)
            said.recv()  # (held until the other run is up too)
    return group


def _worker(said: multiprocessing.connection.Connection) -> None:
    asyncio.run(_run_saying_its_cpu_cgroup(said))


@pytest.mark.parametrize("mode", ["bwrap"], indirect=True)
async def test_the_runs_of_every_worker_process_weigh_one_process_for_the_cpu(mode: str) -> None:  # noqa: F811
    """`serve --workers N` forks N gateway processes, all in the gateway's session (one scheduling group with
    autogroup), each with its own `max_concurrent` slots; each joined its runs to a cpu cgroup of its own PID
    (`tierwise-<pid>-runs`, review31a), so the runs of N workers weighed N processes against the gateway's one
    session (two workers, two spinning runs: 0.97x and 1.01x the gateway's CPU each, as with no shared cgroup at all,
    bench/RESULTS.md). Now every process of the gateway's process group (the workers are forked: they keep the
    supervisor's) joins its runs to the same one. (A forked process of the test plays the second worker.)"""
    if _cpu_cgroup(os.getpid()) is None or cgroup.runs_cpu() is None:
        unavailable("no cgroup v1 cpu hierarchy here (docs/security/sandbox.md)")
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    worker = multiprocessing.get_context("fork").Process(target=_worker, args=(theirs,))
    worker.start()
    try:
        other = await asyncio.wait_for(asyncio.to_thread(ours.recv), 60)
        own = await _run_saying_its_cpu_cgroup()
        ours.send("done")
    finally:
        await asyncio.to_thread(worker.join, 60)
        if worker.is_alive():
            worker.kill()
    assert worker.exitcode == 0, worker.exitcode
    assert own is not None and own == other, (own, other)
