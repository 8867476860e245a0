"""review33a's attack on sandbox round 14 (bench/RESULTS.md, "Review of sandbox14"). OS layer alone (no audit hook);
each test failed before its fix."""

from __future__ import annotations

import asyncio
import errno
import glob
import os
from typing import Any

import anyio
from pytest import MonkeyPatch

from tests.harness import unavailable
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, cgroup, run_python, runner

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)
UP = "import time\nprint('up', flush=True)\ntime.sleep(20)"


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def _cgroups_of_this_process() -> list[str]:
    """The runs' own cgroups this process made and has not removed (not the shared `-runs` cpu cgroup)."""
    parents = {place.parent for place in cgroup.places()[0]}
    return [f for parent in parents for f in glob.glob(os.path.join(parent, f"tierwise-{os.getpid()}-*"))
            if not f.endswith("-runs")]


def _run_folders() -> set[str]:
    return set(glob.glob("/tmp/tierwise-sandbox-*") + glob.glob("/dev/shm/tierwise-sandbox-*"))


async def _cancelled_at_every_await() -> None:
    """A run ended by an anyio cancel scope (as the MCP server's handlers are when their client cancels): cancelled
    while it runs, and again at every await of its end until the scope is left."""
    with anyio.CancelScope() as scope:
        async with runner.open_python(UP, limits=LIMITS, audit_hook=False) as live:
            assert live.proc is not None and live.proc.stdout is not None, live.refused
            assert await live.proc.stdout.readline() == b"up\n"
            scope.cancel()
            await anyio.sleep(30)
    assert scope.cancelled_caught


async def test_a_run_cancelled_at_every_await_leaves_nothing_behind(mode: str) -> None:  # noqa: F811
    """The end of a run (its process waited for, its cgroups and folder removed) was cut short by a second
    cancellation: each such run left its two cgroups, up to 3 of the gateway's descriptors (until it could open none)
    and a weak run's folder. Now the end goes on to its end and the cancellation goes on up; with `run_as_range` the
    uid still goes back only after it (the next run gets one)."""
    if os.geteuid() == 0:
        sandbox.configure(allow_weak=mode == "weak", max_concurrent=2, run_as_range="61184-61185")
    await run_python("pass", limits=LIMITS, audit_hook=False)
    descriptors, folders = _descriptors(), _run_folders()
    for _ in range(3):
        await _cancelled_at_every_await()
    left: tuple[object, ...] = ()
    for _ in range(200):  # (the end goes on after the cancellation: a moment)
        left = (_descriptors() - descriptors, _cgroups_of_this_process(), _run_folders() - folders)
        if left == (0, [], set()):
            break
        await asyncio.sleep(0.05)
    assert left == (0, [], set()), left
    r = await run_python("print('next')", limits=LIMITS, audit_hook=False)
    assert r.stdout == "next\n", r.summary()  # (with run_as_range: a uid was free)


# flock: LOCK_EX on a file every run and the host may read (the standard library's os.py) and on its own file; then two
# descriptors of its own file (a one-task run has nothing to exclude); the run says which files and waits.
FLOCKS = """
import fcntl, os, sys
def lock(fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return "GRANTED"
    except OSError as e:
        return f"refused {e.errno}"
shared = lock(os.open(os.__file__, os.O_RDONLY))
first, second = (os.open("own", os.O_CREAT | os.O_RDWR, 0o600) for _ in range(2))
print("shared", shared, "first", lock(first), "second", lock(second))
print(os.__file__, flush=True)
sys.stdin.readline()
"""


async def _flock_seen_by_the_host(limits: SandboxLimits) -> tuple[str, bool]:
    """(what the run said of its second descriptor, whether the host could lock the shared file while the run held
    it)."""
    import fcntl

    async with runner.open_python(FLOCKS, limits=limits, audit_hook=False) as live:
        assert live.proc is not None and live.proc.stdout is not None and live.proc.stdin is not None, live.refused
        second = (await live.proc.stdout.readline()).decode().strip()
        path = (await live.proc.stdout.readline()).decode().strip()
        assert path, second
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            free = True
        except BlockingIOError:
            free = False
        finally:
            os.close(fd)
        live.proc.stdin.write(b"done\n")
    return second, free


async def test_a_run_takes_no_flock_another_process_sees(mode: str) -> None:  # noqa: F811
    """`flock` was left to the kernel (one lock per open file description: few), but on any file a run may open: one
    run's LOCK_EX on the standard library's os.py made a host process's lock of it wait while the run lasted, and two
    runs passed bits through it (8 of 8 in every mode). A one-task run has nothing to exclude: it succeeds with no lock
    taken."""
    second, free = await _flock_seen_by_the_host(LIMITS)
    assert free, "the run's flock of os.py kept the host's LOCK_EX out"
    assert second == "shared GRANTED first GRANTED second GRANTED", second


async def test_a_run_with_threads_takes_no_flock_another_process_sees(mode: str) -> None:  # noqa: F811
    """With threads allowed flock stayed the kernel's (for threads excluding each other through two descriptors of one
    file), and with it the wait of the host's processes and the channel between runs (session 34: 8 of 8 bits with
    `threads=True`). It takes no lock there either (`tests/security/test_sandbox_round15.py`): refused, ENOSYS, since
    session 35 (`tests/security/test_sandbox_round16.py`: its threads are never told they hold a lock that does not
    exclude)."""
    second, free = await _flock_seen_by_the_host(SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256, threads=True))
    assert free and second == "shared refused 38 first refused 38 second refused 38", (second, free)


async def test_a_run_under_landlock_alone_takes_no_flock(landlock_alone: None) -> None:
    """The same with the host in sight (no mount namespace)."""
    second, free = await _flock_seen_by_the_host(LIMITS)
    assert free and second == "shared GRANTED first GRANTED second GRANTED", (second, free)


# Queued signals: POSIX timers (each keeps one queued) and real-time signals the run sends itself, blocked.
SIGNALS = """
import ctypes, os, signal, threading
libc = ctypes.CDLL(None, use_errno=True)
timer = ctypes.c_long()
made = 0
while made < 100 and libc.timer_create(1, None, ctypes.byref(timer)) == 0:
    made += 1
print("timers", made, ctypes.get_errno() if made < 100 else 0)
blocked = ctypes.c_uint64(((1 << 64) - 1) & ~((1 << 31) - 1))  # signals 32-64 (bit n - 1), the C library's two too
libc.syscall(14, 0, ctypes.byref(blocked), None, 8)  # rt_sigprocmask(SIG_BLOCK)
for sig in (32, 34, 64, 34 | 1 << 32):  # (the last: the kernel reads 34)
    if libc.syscall(62, 0, ctypes.c_long(sig)) == 0:
        print("kill", sig, "queued")
    else:
        print("kill", sig, "refused", ctypes.get_errno())
try:
    signal.raise_signal(40)
    print("raise 40 queued")
except OSError as e:
    print("raise 40 refused", e.errno)
pending = ctypes.c_uint64()
libc.syscall(127, ctypes.byref(pending), 8)  # rt_sigpending
print("pending", hex(pending.value))
got = []
signal.signal(signal.SIGUSR1, lambda *_: got.append("usr1"))
signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # (tgkill: os.kill(0) reaches bubblewrap too, session 34)
signal.raise_signal(signal.SIGUSR1)
print("standard", got)
"""


def _no_queued_signals(stdout: str) -> None:
    lines = stdout.splitlines()
    assert lines[0] == "timers 0 1", stdout  # EPERM: none made
    for sig in (32, 34, 64, 34 | 1 << 32):
        assert f"kill {sig} refused 1" in lines, stdout
    assert "raise 40 refused 1" in lines and "pending 0x0" in lines, stdout
    assert "standard ['usr1', 'usr1']" in lines, stdout


async def test_a_run_queues_no_signal_of_the_users_count(mode: str) -> None:  # noqa: F811
    """RLIMIT_SIGPENDING is counted per user and every run is the sandbox's one user: one run's 64 POSIX timers or
    real-time signals sent to itself left every other run none (0 of 64), and told them how many it held. Refused now;
    standard signals to itself still work."""
    r = await run_python(SIGNALS, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    _no_queued_signals(r.stdout)


async def test_a_run_under_landlock_alone_queues_no_signal(landlock_alone: None) -> None:
    """The same with the host in sight."""
    r = await run_python(SIGNALS, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    _no_queued_signals(r.stdout)


def test_a_failure_of_the_moment_at_start_is_not_kept(monkeypatch: MonkeyPatch) -> None:
    """What `cgroup.places` finds at start is kept for the process's life: one EMFILE in the check of a controller
    (descriptors full for a moment) left every later run without that cgroup, and under Landlock alone (no memory
    cgroup: the folder unbounded) refused every weak run. The check is tried again before it is believed."""
    have = {place.controller for place in cgroup.places()[0]}
    if not have:
        unavailable("no cgroup this process may make runs' cgroups in (docs/security/sandbox.md)")
    real = os.mkdir
    failed: list[Any] = []

    def once(path: Any, *args: Any, **kwargs: Any) -> None:
        if "tierwise-check-" in str(path) and not failed:
            failed.append(path)
            raise OSError(errno.EMFILE, "Too many open files")
        real(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", once)
    cgroup.places.cache_clear()
    try:
        found, missing = cgroup.places()
    finally:
        cgroup.places.cache_clear()
    assert failed and {place.controller for place in found} == have, (failed, missing)
