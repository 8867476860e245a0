"""Session 24's attack round on the sandbox (bench/RESULTS.md, "Sandbox attack round 5"): what a run could hold
of the kernel's per-user counts and memory, and where its crash went, with the OS layer alone (no audit hook), in
bubblewrap and in the weak sandbox. Each test failed before its fix."""

from __future__ import annotations

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude
from tests.security.test_sandbox_attacks import _run_cgroups
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tests.verifiers.kernel_memory_attacks import RAW_THREADS
from tierwise.sandbox import SandboxLimits, cgroup, run_python, runner

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

FANOTIFY = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
held = []
while len(held) < 100:
    fd = libc.syscall(300, 0x200, os.O_RDONLY)  # fanotify_init(FAN_REPORT_FID): no capability needed
    if fd < 0:
        print("refused", ctypes.get_errno())
        break
    held.append(fd)
print("GROUPS", len(held))
"""


async def test_a_run_holds_none_of_its_user_s_fanotify_groups(mode: str) -> None:  # noqa: F811
    """fanotify groups are counted per user up through the user namespaces (fs.fanotify.max_user_groups, 128):
    a run held 61 (up to its open_files), two runs 122, and the host user's other programs had 6 left while they
    ran, as with inotify (refused since session 20)."""
    r = await run_python(FANOTIFY, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert "GROUPS 0" in r.stdout and "refused 1" in r.stdout, r.stdout


CORE_LIMIT = """
import ctypes, resource
""" + attempt_prelude("CHANGED") + """
libc = ctypes.CDLL(None, use_errno=True)
print("core", resource.getrlimit(resource.RLIMIT_CORE))
def by_setrlimit():
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 1))
    except ValueError as e:  # how Python says EPERM here
        raise OSError(1, str(e))
def by_prlimit():
    new = (ctypes.c_uint64 * 2)(0, 0)
    if libc.prlimit64(0, resource.RLIMIT_CORE, new, None) != 0:
        raise OSError(ctypes.get_errno(), "prlimit64")
def by_syscall():  # setrlimit(2), 160 on x86-64 (the C library uses prlimit64)
    new = (ctypes.c_ulong * 2)(0, 0)
    if libc.syscall(160, resource.RLIMIT_CORE, new) != 0:
        raise OSError(ctypes.get_errno(), "setrlimit")
attempt("setrlimit", by_setrlimit)
attempt("prlimit64", by_prlimit)
attempt("syscall", by_syscall)
print("core after", resource.getrlimit(resource.RLIMIT_CORE))
"""


async def test_a_run_s_crash_cannot_reach_a_core_pattern_pipe(mode: str) -> None:  # noqa: F811
    """For a `core_pattern` that pipes to a program (systemd-coredump, apport: `|/usr/lib/...`) the kernel ignores
    RLIMIT_CORE but for the value 1, with which it aborts the dump. Runs had (0, 0): each crash would hand up to the
    run's memory to the host's crash helper, as root outside every namespace. Now (1, 1), which the code cannot
    lower. (core_pattern is the machine's, so the test reads the limit the kernel acts on.)"""
    r = await run_python(CORE_LIMIT, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert "core (1, 1)" in r.stdout and "core after (1, 1)" in r.stdout, r.stdout
    assert "CHANGED" not in r.stdout, r.stdout


FOLDERS = """
import os
n = 0
try:
    while n < 200_000:
        os.mkdir(f"d{n}")
        n += 1
except OSError as e:
    print("stopped", e.errno)
print("FOLDERS", n)
"""


@pytest.mark.parametrize("mode", ["weak"], indirect=True)  # bubblewrap's folder: its memory cgroup (test_sandbox_attacks)
async def test_a_weak_run_s_folder_holds_a_bounded_number_of_inodes(mode: str) -> None:  # noqa: F811
    """A root gateway's weak run has a tmpfs folder of `work_mb` bytes, but tmpfs keeps each inode and dentry in
    kernel memory its size does not count (by default up to half the RAM's pages of them), and no cgroup held
    the weak run: empty folders reached 850 MB of unreclaimable slab before the 5 s CPU limit ended the run. The
    folder now holds one inode per 4 KB of its size."""
    r = await run_python(FOLDERS, limits=SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256, work_mb=8),
                         audit_hook=False)
    if "readonly_host" not in r.layers:
        unavailable("the weak run's folder is a tmpfs only for a root gateway that can make a mount namespace")
    assert r.ok, (r.summary(), r.stdout[-200:])
    assert "stopped 28" in r.stdout, r.stdout  # ENOSPC
    assert int(r.stdout.split("FOLDERS")[1].split()[0]) < 8 * 1024 * 1024 // 4096, r.stdout


async def test_threads_a_caller_allows_are_bounded_in_both_sandboxes(mode: str) -> None:  # noqa: F811
    """`threads=True` (a verifier's `threads: true`) in the weak sandbox: 1,000 raw clones of 1,000 asked (each a
    host PID and a kernel stack), where bubblewrap's run stopped at its pids cgroup. Weak runs now get the
    run's cgroups too (memory and pids), where the gateway can make them."""
    if not cgroup.places()[0]:
        unavailable("no cgroup can be made for a run here")
    r = await run_python(RAW_THREADS, limits=SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256, threads=True),
                         audit_hook=False)
    assert "THREADS" in r.stdout, r.stderr
    assert int(r.stdout.split("THREADS")[1].split()[0]) < cgroup.TASKS + cgroup.THREADS, r.stdout
    assert "cgroup_pids" in r.layers and "cgroup_memory" in r.layers, r.layers
    assert _run_cgroups() == []


async def test_a_run_s_core_dump_would_hold_none_of_its_memory(mode: str) -> None:  # noqa: F811
    """(session 25) A `core_pattern` on a socket (`@...`, Linux 6.16: systemd-coredump's) ignores RLIMIT_CORE (the
    kernel sets the limit to infinity for it): a crashed run's memory, up to its limit, went to the host's crash
    handler outside every namespace. Every task of a run now has `coredump_filter` 0 (no mapping dumped: only the
    ELF notes), which it cannot set back (no /proc). core_pattern is the machine's and is not changed here: the
    test reads the filter the kernel acts on, from the host, for each task of a live run (bubblewrap's among them).
    Before: 00000033, the kernel's default (anonymous and file-backed private memory, ELF headers)."""
    async with runner.open_python("import time\nprint('up', flush=True)\ntime.sleep(20)", limits=LIMITS,
                                  audit_hook=False) as live:
        assert live.proc is not None and live.proc.stdout is not None
        assert await live.proc.stdout.readline() == b"up\n"
        pids = [live.proc.pid]
        if live.group is not None and live.group.procs:
            with open(live.group.procs[0]) as fh:
                pids = [int(p) for p in fh.read().split()]
        filters = {}
        for pid in pids:
            with open(f"/proc/{pid}/coredump_filter") as fh:
                filters[pid] = fh.read().strip()
        live.kill()
    assert filters and set(filters.values()) == {"00000000"}, filters


PAGE_CACHE = """
import ctypes, mmap, os, sys
""" + attempt_prelude("ANSWERED") + """
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
shared = os.path.realpath(sys.executable)  # a file every run (and the gateway) maps
fd = os.open(shared, os.O_RDONLY)
size = os.fstat(fd).st_size
def cachestat():
    stat = (ctypes.c_uint64 * 5)()
    span = (ctypes.c_uint64 * 2)(0, 0)  # the whole file
    if libc.syscall(451, fd, span, stat, 0) != 0:
        raise OSError(ctypes.get_errno(), "cachestat")
    print("cached pages", stat[0])
def mincore():
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_PRIVATE, fd, 0)
    buf = (ctypes.c_ubyte * ((size + 4095) // 4096))()
    if libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(size), buf) != 0:
        raise OSError(ctypes.get_errno(), "mincore")
    print("resident", sum(b & 1 for b in buf))
def nowait():
    os.preadv(fd, [bytearray(4096)], size // 2, os.RWF_NOWAIT)
attempt("cachestat", cachestat)
attempt("mincore", mincore)
attempt("preadv2 nowait", nowait)
print("plain read", len(os.pread(fd, 16, 0)))
"""


async def test_a_run_cannot_ask_which_pages_of_a_shared_file_are_cached(mode: str) -> None:  # noqa: F811
    """(session 25) cachestat, mincore and preadv2's RWF_NOWAIT tell, page by page, what of a file the run may open
    is in the page cache: what other runs or the gateway read lately of the shared libraries and the interpreter.
    All three answered (cachestat counted the interpreter's cached pages); they are refused now (EPERM; ENOSYS for
    cachestat where libseccomp does not know it). A plain read still works."""
    r = await run_python(PAGE_CACHE, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert "ANSWERED" not in r.stdout, r.stdout
    assert "cachestat refused" in r.stdout and "mincore refused 1" in r.stdout, r.stdout
    assert "preadv2 nowait refused 1" in r.stdout and "plain read 16" in r.stdout, r.stdout


EVICT = """
import mmap, os
""" + attempt_prelude("DROPPED") + """
fd = os.open(SHARED, os.O_RDONLY)
attempt("fadvise dontneed", lambda: os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED))
def pageout():
    with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as m:
        m.madvise(21)  # MADV_PAGEOUT
attempt("madvise pageout", pageout)
print("done")  # (no read of it here: that would bring its pages back)
"""


def _resident(path: str) -> int:
    """How many of `path`'s pages are in the page cache (mincore on a mapping that faults nothing in)."""
    import ctypes
    import mmap
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        buf = (ctypes.c_ubyte * ((size + 4095) // 4096))()
        try:
            assert libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(size), buf) == 0, ctypes.get_errno()
        finally:
            libc.munmap(ctypes.c_void_p(addr), size)
    finally:
        os.close(fd)
    return sum(b & 1 for b in buf)


async def test_a_run_cannot_drop_a_shared_file_s_pages_from_the_page_cache(mode: str) -> None:  # noqa: F811
    """(session 26) posix_fadvise(POSIX_FADV_DONTNEED) on a file the run may read (here a module of the standard
    library, which both sandboxes show) dropped its pages from the page cache of the whole machine: the eviction
    half of a page-cache probe (evict, wait, time a read back), whose asking half round 6 refused. Refused now
    (EPERM), as MADV_PAGEOUT; the pages stay cached."""
    import os

    shared = os.path.join(os.path.dirname(os.__file__), "this.py")
    with open(shared, "rb") as fh:
        fh.read()
    before = _resident(shared)
    assert before > 0
    r = await run_python(f"SHARED = {shared!r}\n" + EVICT, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert _resident(shared) == before, r.stdout  # (first: what the kernel did, whatever the run was told)
    assert "fadvise dontneed refused 1" in r.stdout and "done" in r.stdout, r.stdout
    assert "madvise pageout DROPPED" not in r.stdout, r.stdout
