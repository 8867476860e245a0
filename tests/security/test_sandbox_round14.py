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
