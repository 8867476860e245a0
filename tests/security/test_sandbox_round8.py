"""Session 27's attack round on the sandbox (bench/RESULTS.md, "Sandbox attack round 8"): host-wide effects a run
could still cause (writing back the whole machine's dirty pages, same-page merging) and where a weak run's folder
goes when nothing hides the host (Landlock alone) and no memory cgroup pays for it. OS layer alone (no audit hook);
each test failed before its fix."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise.commands.doctor import sandbox_report
from tierwise.config import Config
from tierwise.sandbox import SandboxLimits, backend, cgroup, run_python, weak
from tierwise.sandbox.backend import SandboxUnavailable

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

SYNC = """
import ctypes, os
""" + attempt_prelude("WROTE BACK") + """
libc = ctypes.CDLL(None, use_errno=True)
def call(number, *args):
    def go():
        if libc.syscall(number, *args) != 0:
            raise OSError(ctypes.get_errno(), "refused")
    return go
host_file = os.open(os.__file__, os.O_RDONLY)  # the interpreter's, on the host's disk
attempt("sync", call(162))
attempt("syncfs of a host file's filesystem", call(306, host_file))
with open("mine.txt", "w") as fh:
    fh.write("x")
    fh.flush()
    attempt("fsync of its own file", lambda: os.fsync(fh.fileno()))
"""


async def test_a_run_cannot_write_back_the_machine_s_dirty_pages(mode: str) -> None:  # noqa: F811
    """`sync()` writes back every filesystem's dirty pages, `syncfs()` those of the filesystem of any descriptor
    (the interpreter's is the host's disk): one run's sync wrote back the 1 GB the host had just written (Dirty
    1,085,444 → 452 kB, 0.8 s), and a loop of them keeps the machine's I/O stalled behind everyone's data. Both
    are refused now; fsync of the run's own file stays."""
    r = await run_python(SYNC, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert "sync refused 1" in r.stdout, r.stdout
    assert "syncfs of a host file's filesystem refused 1" in r.stdout, r.stdout
    assert "fsync of its own file WROTE BACK" in r.stdout, r.stdout


MERGE = """
import ctypes, mmap
""" + attempt_prelude("MERGEABLE") + """
libc = ctypes.CDLL(None, use_errno=True)
area = mmap.mmap(-1, 1 << 16)
start = ctypes.addressof(ctypes.c_char.from_buffer(area))
def call(fn, *args):
    def go():
        if fn(*args) != 0:
            raise OSError(ctypes.get_errno(), "refused")
    return go
attempt("madvise MADV_MERGEABLE", call(libc.syscall, 28, ctypes.c_void_p(start), 1 << 16, 12))
attempt("prctl PR_SET_MEMORY_MERGE", call(libc.prctl, 67, 1, 0, 0, 0))
attempt("madvise MADV_DONTNEED", call(libc.syscall, 28, ctypes.c_void_p(start), 1 << 16, 4))
"""


async def test_a_run_cannot_offer_its_pages_for_same_page_merging(mode: str) -> None:  # noqa: F811
    """Kernel same-page merging makes a write to a merged page a copy-on-write fault, much slower than a plain
    write: timing it tells whether another process holds a page of the guessed content. A run marked its pages
    mergeable (madvise) and itself whole (prctl, Linux 6.4); where the host runs KSM they would merge. Refused now;
    other advice (DONTNEED, which the allocator uses) stays."""
    r = await run_python(MERGE, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert "madvise MADV_MERGEABLE refused 1" in r.stdout, r.stdout
    assert "prctl PR_SET_MEMORY_MERGE refused" in r.stdout, r.stdout  # (EINVAL where the kernel predates it)
    assert "madvise MADV_DONTNEED MERGEABLE" in r.stdout, r.stdout


FILL = """
import os
print("FOLDER", os.getcwd())
made = 0
try:
    while made < 48:  # 768 MB at most, 16 MB a file (RLIMIT_FSIZE)
        fd = os.open(f"f{made}", os.O_CREAT | os.O_WRONLY, 0o600)
        os.posix_fallocate(fd, 0, 16 << 20)
        os.close(fd)
        made += 1
except OSError as e:
    print("stopped", e.errno)
print("MADE", made)
"""


@pytest.fixture
def landlock_alone_no_memory_cgroup(landlock_alone: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Weak runs with the host in sight (`landlock_alone`, tests/security/conftest.py) and no cgroup per run (a
    container's read-only /sys/fs/cgroup)."""
    monkeypatch.setattr(cgroup, "places", lambda: ((), "no cgroup per run (test)"))


async def test_a_weak_run_with_only_the_disk_for_its_folder_is_refused(landlock_alone_no_memory_cgroup: None) -> None:
    """Landlock alone, no memory cgroup, and a /dev/shm as big as this machine's (half the RAM): the run's folder was
    on the host's disk, bounded per file (16 MB) and not in sum: 48 files, 768 MB, in a moment (fallocate costs no
    CPU; round 7: 1 GB in 24 ms). Now the weak sandbox is refused there, and doctor says why and what to give it."""
    if weak.memory_folder_root() is not None and weak.folder_root() is not None:
        unavailable("/dev/shm here is a small tmpfs: the run's folder goes there (the next test)")
    with pytest.raises(SandboxUnavailable, match="host's disk"):
        r = await run_python(FILL, limits=LIMITS, audit_hook=False)
        assert "MADE 48" not in r.stdout, r.stdout  # (what main did: 768 MB on the disk)
    good, message = sandbox_report(Config.model_validate({"sandbox": {"allow_weak": True}}))
    assert not good and "WEAK sandbox refused" in message and "memory controller" in message, message


@pytest.fixture
def small_shared_memory() -> Iterator[str]:
    """A 64 MB tmpfs, as Docker's /dev/shm."""
    if os.geteuid() != 0:
        unavailable("mounting a tmpfs needs root")
    place = tempfile.mkdtemp(prefix="tw-r8-shm-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=1777", "tw-r8-shm", place], capture_output=True)
    if r.returncode != 0:
        shutil.rmtree(place, ignore_errors=True)
        unavailable(f"a tmpfs cannot be mounted here ({r.stderr.decode(errors='replace').strip()})")
    yield place
    subprocess.run(["umount", "-l", place], capture_output=True)
    shutil.rmtree(place, ignore_errors=True)


async def test_a_weak_run_without_a_memory_cgroup_fills_only_a_small_shared_memory(
        landlock_alone_no_memory_cgroup: None, small_shared_memory: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where /dev/shm is a small tmpfs (Docker's 64 MB), the run's folder goes there with no memory cgroup too: its
    size bounds the sum (ENOSPC), where the host's disk took all 48 files."""
    monkeypatch.setattr(weak, "memory_folder_root", lambda: small_shared_memory)
    r = await run_python(FILL, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert "landlock" in r.layers and "cgroup_memory" not in r.layers, r.layers
    assert f"FOLDER {small_shared_memory}/" in r.stdout, r.stdout
    assert "stopped 28" in r.stdout and int(r.stdout.split("MADE", 1)[1]) <= 4, r.stdout
    assert not os.listdir(small_shared_memory)  # removed with the run


BY_PID = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def raw(number, args):
    def go(pid):
        if libc.syscall(number, *args(pid)) < 0:
            raise OSError(ctypes.get_errno(), "refused")
    return go
header = (ctypes.c_uint32 * 2)()
def capget(pid):
    header[0], header[1] = 0x20080522, pid
    if libc.syscall(125, header, (ctypes.c_uint32 * 6)()) < 0:
        raise OSError(ctypes.get_errno(), "refused")
CALLS = {
    "getpgid": os.getpgid, "getsid": os.getsid, "sched_getscheduler": os.sched_getscheduler,
    "sched_getparam": os.sched_getparam, "sched_getaffinity": os.sched_getaffinity,
    "sched_rr_get_interval": os.sched_rr_get_interval, "getpriority": lambda p: os.getpriority(os.PRIO_PROCESS, p),
    "ioprio_get": raw(252, lambda p: (1, p)), "get_robust_list": raw(274, lambda p: (p, ctypes.byref(ctypes.c_void_p()),
                                                                                        ctypes.byref(ctypes.c_size_t()))),
    "sched_getattr": raw(315, lambda p: (p, ctypes.create_string_buffer(56), 56, 0)), "capget": capget,
}
def answer(fn, pid):
    try:
        fn(pid)
        return "answered"
    except OSError as e:
        return f"errno {e.errno}"
for name, fn in CALLS.items():
    print(name, "gateway", answer(fn, GATEWAY), "free", answer(fn, FREE), "own", answer(fn, 0))
def user_priority():
    os.getpriority(os.PRIO_USER, 0)
print("user priority", answer(lambda _: user_priority(), 0))
"""


def _free_pid() -> int:
    pid_max = int(open("/proc/sys/kernel/pid_max").read())
    for pid in range(pid_max - 1, 300, -1):
        if not os.path.exists(f"/proc/{pid}"):
            return pid
    raise AssertionError("no free PID")


@pytest.mark.parametrize("mode", ["weak"], indirect=True)  # bubblewrap's PID namespace shows only the run
async def test_a_weak_run_cannot_tell_a_living_pid_from_a_free_one(mode: str) -> None:  # noqa: F811
    """/proc hidden (or closed by Landlock), the weak run still asked the kernel about any PID: getpgid, getsid, the
    scheduling and priority calls and capget answered for a living one and said ESRCH for a free one, so the run
    listed every task of the host (277 of 277 here, the gateway among them) and read their groups, CPUs and
    priorities. Now each call aimed at another PID is EPERM whether it lives or not (capget, whose PID is in
    memory, always); aimed at itself (0) they answer."""
    r = await run_python(f"GATEWAY, FREE = {os.getpid()}, {_free_pid()}\n" + BY_PID, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 12, r.stdout
    for line in lines[:-1]:
        name = line.split()[0]
        assert f"{name} gateway errno 1 free errno 1" in line, r.stdout
        if name != "capget":
            assert line.endswith("own answered"), r.stdout
    assert lines[-1] == "user priority errno 1", r.stdout


CPU_CLOCKS = """
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
class Time(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
def cpu_of(pid):
    t = Time()
    if libc.syscall(228, ctypes.c_long(((~pid) << 3) | 2), ctypes.byref(t)) != 0:  # clock_gettime, CPUCLOCK_SCHED
        return f"errno {ctypes.get_errno()}"
    return f"{t.s + t.ns / 1e9:.6f} s"
print("gateway", cpu_of(GATEWAY))
print("pid 1", cpu_of(1))
print("own", time.process_time() > 0, time.thread_time() > 0, time.monotonic() > 0, time.time() > 0)
"""


@pytest.mark.parametrize("mode", ["weak"], indirect=True)  # bubblewrap's PID namespace shows only the run
async def test_a_weak_run_cannot_read_another_process_s_cpu_time(mode: str) -> None:  # noqa: F811
    """A CPU-time clock id names any process by its PID: clock_gettime on the gateway's read its CPU time to the
    nanosecond, live (how much work it does for other clients), and pid 1's. Clock ids past the fixed ones are
    refused now; the run's own CPU clocks and the wall clocks stay."""
    r = await run_python(f"GATEWAY = {os.getpid()}\n" + CPU_CLOCKS, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert "gateway errno 1" in r.stdout and "pid 1 errno 1" in r.stdout, r.stdout
    assert "own True True True True" in r.stdout, r.stdout


GATEWAY_WITH_A_RUN_THAT_CLEARS_ITS_PARENT_DEATH_SIGNAL = """
import asyncio
from tierwise import sandbox
from tierwise.sandbox import bwrap, run_python, SandboxLimits
bwrap.bwrap_path = lambda: None
sandbox.configure(allow_weak=True)
code = "import ctypes, time; ctypes.CDLL(None).prctl(1, 0, 0, 0, 0); time.sleep(120)"  # PR_SET_PDEATHSIG 0
asyncio.run(run_python(code, limits=SandboxLimits(wall_s=300, cpu_s=300), audit_hook=False))
"""


def test_a_weak_run_cannot_clear_its_parent_death_signal() -> None:
    """A weak run dies with its gateway process by its parent-death signal (no PID namespace takes it): the run
    cleared it, and outlived a gateway killed outright, reparented to PID 1, bounded by no wall clock. Setting it is
    refused now: the run dies with the gateway."""
    from tests.security.test_sandbox_cross_run import _children, _state

    place = tempfile.mkdtemp(prefix="r8-outlive-", dir="/tmp")  # its folders, left by the kill: removed below
    os.chmod(place, 0o1777)
    gw = subprocess.Popen([sys.executable, "-c", GATEWAY_WITH_A_RUN_THAT_CLEARS_ITS_PARENT_DEATH_SIGNAL],
                          env={**os.environ, "TMPDIR": place})
    run: list[int] = []
    try:
        for _ in range(600):  # until the run has started (at most a minute on a loaded machine)
            run = _children(gw.pid)
            if run:
                break
            time.sleep(0.1)
        assert run, "the weak run did not start"
        for _ in range(100):  # until it is past its first line (asleep)
            if all(_state(p) == "S" for p in run):
                break
            time.sleep(0.1)
        time.sleep(1)
        gw.kill()
        gw.wait()
        gone = False
        for _ in range(300):
            if not any(os.path.exists(f"/proc/{p}") and _state(p) != "Z" for p in run):
                gone = True
                break
            time.sleep(0.1)
        assert gone, f"the weak run {run} outlived its gateway"
    finally:
        gw.kill()
        for p in run:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        shutil.rmtree(place, ignore_errors=True)


HOST_NAME = """
import os, socket
print("NAME", os.uname().nodename, socket.gethostname())
"""


async def test_a_weak_run_with_a_mount_namespace_does_not_see_the_host_s_name(mode: str) -> None:  # noqa: F811
    """bubblewrap's runs have a UTS namespace (`sandbox`); the weak run with the host read-only had none and read the
    host's name (`os.uname().nodename`, a machine's name often says whose and what it is). It gets a UTS namespace
    of its own with bubblewrap's name now, wherever it gets its mount namespace."""
    if mode == "weak" and not backend.weak_read_only_host():
        unavailable("the weak sandbox cannot make a mount namespace here (no UTS namespace either)")
    if os.uname().nodename == "sandbox":
        unavailable("this host is itself named 'sandbox'")
    r = await run_python(HOST_NAME, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert "NAME sandbox sandbox" in r.stdout, (r.stdout, os.uname().nodename)


def test_a_weak_run_of_a_gateway_that_is_not_root_does_not_see_the_host_s_name() -> None:
    """The same for a gateway that is not root, whose weak run makes a user namespace (and now a UTS namespace)."""
    from tests.security.test_weak_sandbox_own_user import _gateway_runs, _user_namespaces

    if not _user_namespaces():
        unavailable("this kernel lets no unprivileged user make a user namespace")
    out = _gateway_runs(HOST_NAME)
    assert "NAME sandbox sandbox" in out, (out, os.uname().nodename)
