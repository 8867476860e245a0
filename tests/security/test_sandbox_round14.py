"""Session 33's attack round on the sandbox (bench/RESULTS.md, "Sandbox round 14"). OS layer alone (no audit hook);
each test failed before its fix."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from typing import Any

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise.sandbox import SandboxLimits, cgroup, run_python, runner

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)
UP = "import time\nprint('up', flush=True)\ntime.sleep(20)"


def _cgroup_of(pid: int, controller: str) -> str | None:
    """The process's cgroup in the v1 hierarchy of `controller`."""
    with open(f"/proc/{pid}/cgroup") as fh:
        for line in fh:
            _, names, path = line.rstrip("\n").split(":", 2)
            if controller in names.split(","):
                return path
    return None


def _swap(folder: str) -> None:
    """What a user who may make folders beside `folder` does between the gateway's check and its join: the (empty)
    folder removed, one of their own made under the same name (65534's, as that user's mkdir leaves it)."""
    os.rmdir(folder)
    os.mkdir(folder)
    for name in (".", *os.listdir(folder)):
        os.chown(os.path.join(folder, name), 65534, 65534)


async def _run_with_a_swap(which: str) -> tuple[str, str | None, bool]:
    """A gateway in a process group of its own whose run's cgroup (`which`: "cpu", the runs' shared one; "memory", the
    run's own) is swapped after it was made and checked, before the run joins it: (the swapped folder, as the run's
    /proc/<pid>/cgroup names it; the run's cgroup in that hierarchy, None when it did not start; whether it started)."""
    os.setpgid(0, 0)
    swapped: list[str] = []
    real = runner._spawn

    async def spawn(*args: Any, group: cgroup.RunCgroup | None = None, **kwargs: Any) -> Any:
        assert group is not None
        if which == "cpu":
            assert group.cpu is not None
            folder = group.cpu
        else:
            folder = next(f for place, f in group.folders if place.controller == "memory")
        _swap(folder)
        swapped.append(folder)
        return await real(*args, group=group, **kwargs)

    runner._spawn = spawn  # type: ignore[assignment]  # (a forked process of its own: nothing else runs here)
    try:
        async with runner.open_python(UP, limits=LIMITS, audit_hook=False) as live:
            if live.proc is None or live.proc.stdout is None:
                joined, started = None, False
            else:
                started = await live.proc.stdout.readline() == b"up\n"
                joined = _cgroup_of(live.proc.pid, which)
    finally:
        runner._spawn = real  # type: ignore[assignment]
        for folder in swapped:
            for _ in range(100):
                try:
                    os.rmdir(folder)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    await asyncio.sleep(0.05)
    parent = cgroup._cpu_parent(os.getpid()) if which == "cpu" else next(
        p.parent for p in cgroup.places()[0] if p.controller == "memory")
    assert parent is not None and swapped
    mount = next(m for _, m, kind, opts in cgroup._mounts() if kind == "cgroup" and which in opts.split(","))
    return "/" + os.path.relpath(swapped[0], mount), joined, started


def _swapped(said: multiprocessing.connection.Connection, which: str) -> None:
    said.send(asyncio.run(_run_with_a_swap(which)))


@pytest.mark.parametrize("which", ["cpu", "memory"])
@pytest.mark.parametrize("mode", ["bwrap"], indirect=True)
async def test_a_cgroup_swapped_between_the_check_and_the_join_is_not_joined(mode: str, which: str) -> None:  # noqa: F811
    """The runs' cpu cgroup (`tierwise-<pgid>-runs`) was checked by path (lstat: the gateway's own user's), and the run's
    own memory cgroup made and limited by path, then both joined by path between fork and exec: a user who may make
    folders in the gateway's cgroups removed the empty folder in between and made their own under the same name, and a
    root gateway's run joined it (their cpu.shares; for memory, a cgroup with no limit). Now the folder is opened once,
    its owner read from that descriptor, and `cgroup.procs` held open from the check to the join: the swapped folder is
    not joined (the write into the removed one fails, and the run does not start)."""
    if os.geteuid() != 0:
        unavailable("the swap is a root gateway's (another user's folder, writable to root)")
    if which == "cpu" and cgroup._cpu_parent(os.getpid()) is None:
        unavailable("no cgroup v1 cpu hierarchy this process may make folders in (docs/security/sandbox.md)")
    if which == "memory" and not any(p.controller == "memory" and not p.v2 for p in cgroup.places()[0]):
        unavailable("no cgroup v1 memory cgroup per run here (docs/security/sandbox.md)")
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    gateway = multiprocessing.get_context("fork").Process(target=_swapped, args=(theirs, which))
    gateway.start()
    try:
        swapped, joined, started = await asyncio.wait_for(asyncio.to_thread(ours.recv), 60)
    finally:
        await asyncio.to_thread(gateway.join, 60)
        if gateway.is_alive():
            gateway.kill()
    assert gateway.exitcode == 0, gateway.exitcode
    assert joined != swapped, (swapped, joined, started)


# The machine's counters: sysinfo (free memory, load, task count), statfs/fstatfs (free blocks and inodes of the
# host's disk, and of the shared-memory tmpfs where a weak run's folder is), ustat.
COUNTERS = attempt_prelude("ANSWERED") + """
import ctypes, os, sqlite3
libc = ctypes.CDLL(None, use_errno=True)
def call(number, *args):
    if libc.syscall(number, *args) != 0:
        raise OSError(ctypes.get_errno(), "")
info = ctypes.create_string_buffer(512)
attempt("sysinfo", lambda: call(99, info))
attempt("statvfs-library", lambda: os.statvfs(os.path.dirname(os.__file__)))
attempt("statvfs-folder", lambda: os.statvfs("."))
attempt("fstatvfs", lambda: os.fstatvfs(os.open(os.__file__, os.O_RDONLY)))
attempt("ustat", lambda: call(136, os.stat(os.__file__).st_dev, info))
db = sqlite3.connect("own.db")
db.execute("create table t (a)")
db.execute("insert into t values (1)")
db.commit()
print("sqlite", db.execute("select sum(a) from t").fetchone()[0], sorted(range(2000, 0, -1))[:2])
"""


def _no_counters(stdout: str) -> None:
    for name in ("sysinfo", "statvfs-library", "statvfs-folder", "fstatvfs", "ustat"):
        assert f"{name} refused 38" in stdout, stdout  # ENOSYS: the filter's answer
    assert "sqlite 1 [1, 2]" in stdout, stdout


async def test_a_run_reads_none_of_the_machines_counters(mode: str) -> None:  # noqa: F811
    """`sysinfo` answered the host's free memory, load and task count, and `statfs` the free blocks of every filesystem
    a run may open (the host's disk to the megabyte) in every mode: other tenants' activity, and a channel between
    runs. ENOSYS now, as on a kernel without them; the interpreter, sorting and sqlite on a file still work."""
    r = await run_python(COUNTERS, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    _no_counters(r.stdout)


async def test_a_run_under_landlock_alone_reads_none_of_the_machines_counters(landlock_alone: None) -> None:
    """The same with the host in sight (no mount namespace; the run's folder on the shared-memory tmpfs)."""
    r = await run_python(COUNTERS, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    _no_counters(r.stdout)


# Record locks: 1,000 byte ranges of a file of the run's own folder locked, then sqlite3 on a file, then an
# open-file-description lock; the run says which file (as /proc/locks names it: device and inode) and waits.
LOCKS = """
import fcntl, os, sqlite3, struct, sys
fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o600)
for k in range(1000):
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 2 * k)
db = sqlite3.connect("own.db")
db.execute("create table t (a)")
db.execute("insert into t values (7)")
db.commit()
print("sqlite", db.execute("select a from t").fetchone()[0])
try:
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 1, 0))
    print("ofd GRANTED")
except OSError as e:
    print("ofd refused", e.errno)
st = os.fstat(fd)
print(f"key {os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}", flush=True)
sys.stdin.readline()
"""


def _locks_of(key: str) -> int:
    with open("/proc/locks") as fh:
        return sum(1 for line in fh if key in line.split())


async def _no_lock_kept() -> None:
    async with runner.open_python(LOCKS, limits=LIMITS, audit_hook=False) as live:
        assert live.proc is not None and live.proc.stdout is not None and live.proc.stdin is not None, live.refused
        said = [(await live.proc.stdout.readline()).decode().strip() for _ in range(3)]
        key = said[2].split()[-1]
        held = _locks_of(key)
        live.proc.stdin.write(b"done\n")
    assert held == 0, f"the kernel holds {held} record locks of the run's file {key}"
    assert said[:2] == ["sqlite 7", "ofd refused 22"], said  # (EINVAL: as a kernel without them)


async def test_the_kernel_keeps_no_record_lock_of_a_run(mode: str) -> None:  # noqa: F811
    """Each POSIX record lock is kernel memory charged to no memory cgroup, with no limit the kernel enforces
    (RLIMIT_LOCKS is ignored): a run held 224,000 (43 MB) within cpu_s 5, and a read lock on a file it may only read
    made a host process wait. A run is one process, whose POSIX locks never conflict with its own: they succeed now
    without the kernel taking one (sqlite3 on a file still works), and open-file-description locks are refused."""
    await _no_lock_kept()


async def test_the_kernel_keeps_no_record_lock_of_a_run_under_landlock_alone(landlock_alone: None) -> None:
    """The same with the host in sight (no mount namespace)."""
    await _no_lock_kept()


PRIORITY = "import os, sys\nprint(os.getpriority(os.PRIO_PROCESS, 0), flush=True)\nsys.stdin.readline()"


def _autogroup_nice(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/autogroup") as fh:
            return int(fh.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


@pytest.mark.parametrize("shared", [True, False], ids=["v1-cpu-cgroup", "none"])
async def test_runs_without_the_shared_cpu_cgroup_weigh_one_process(mode: str, shared: bool,  # noqa: F811
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the runs' shared cpu cgroup is not made (cgroup v2; a gateway that may make none), each run weighed as much
    as the gateway: 4 runs spinning took 3.75x its CPU (bench/RESULTS.md, "Sandbox round 14"). There each run now
    starts `runs_nice(max_concurrent)` levels below the gateway (4 at once: 7, weight 215 of 1,024), its task and, for a
    weak run (a session of its own from its fork), its session's autogroup; with the shared cgroup nothing changes."""
    from tierwise.sandbox import backend

    if shared and cgroup.runs_cpu() is None:
        unavailable("no cgroup v1 cpu hierarchy this process may make folders in (docs/security/sandbox.md)")
    if not shared:
        monkeypatch.setattr(cgroup, "runs_cpu", lambda: None)  # (as on cgroup v2: not made)
    monkeypatch.setattr(backend, "capacity", backend.Capacity(4))
    own = os.getpriority(os.PRIO_PROCESS, 0)
    expected = own if shared else min(19, own + 7)
    async with runner.open_python(PRIORITY, limits=LIMITS, audit_hook=False) as live:
        assert live.proc is not None and live.proc.stdout is not None and live.proc.stdin is not None, live.refused
        nice = int((await live.proc.stdout.readline()).decode())
        group = _autogroup_nice(live.proc.pid) if mode == "weak" else None
        live.proc.stdin.write(b"done\n")
    assert nice == expected, (nice, expected)
    if mode == "weak" and group is not None:
        assert group == (0 if shared else 7), group
    assert cgroup.runs_nice(1) == 0 and cgroup.runs_nice(2) == 4 and cgroup.runs_nice(4) == 7
