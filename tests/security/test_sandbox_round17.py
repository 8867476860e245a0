"""Session 36's sandbox round (bench/RESULTS.md, "Sandbox round 17"): a weak run whose host is read-only (a root
gateway's mount namespace, or a user namespace of a gateway that is not root) saw the host's PIDs: `getppid` named
the gateway, `F_GETLK` on a file a host process held locked named that process, a thread's id counted the host's
tasks. It now runs as PID 2 of a PID namespace of its own (tierwise.sandbox.pidns), under an init of ours, as a
bubblewrap run does. OS layer alone (no audit hook)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import subprocess
import sys

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import (  # noqa: F401 (weak_only: the fixture)
    REFUSE_PID_NAMESPACES,
    WEAK_GATEWAY,
    processes_below,
    threads_program,
    weak_only,
)
from tests.security.test_weak_sandbox_own_user import _gateway_runs, _user_namespaces
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, backend, bwrap, run_python, weak

SECRET = "sk-ROUND17-KEEPER-ENVIRONMENT-0123456789"
LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

# What the run learns of PIDs: its own, its parent's, a thread's, and the holder of a lock the gateway holds on a file
# every run may read (the standard library's os.py: a shared POSIX lock, F_GETLK asks about an exclusive one).
THREAD = """
t = threading.Thread(target=lambda: ids.append(threading.get_native_id()))
t.start()
t.join()
"""
PIDS = """
import fcntl, os, struct, threading
ids = [0]
""" + THREAD + """
fd = os.open(os.__file__, os.O_RDONLY)
holder = struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)))[4]
print("PIDS", os.getpid(), os.getppid(), ids[-1], holder)
"""


def _read_only_host() -> None:
    if not backend.weak_read_only_host():
        unavailable("the weak sandbox cannot make a mount namespace here: its host is not read-only, nor hidden")


def _pid_namespace() -> bool:
    """The host read-only (else unavailable); whether the kernel allows its runs a PID namespace, which tierwise must
    claim exactly then (where it does not, test_a_kernel_refusing_pid_namespaces_keeps_the_read_only_host)."""
    _read_only_host()
    allowed = _kernel_pid_namespace()
    assert backend.weak_pid_namespace() == allowed
    return allowed


def _kernel_pid_namespace() -> bool:
    """Whether this kernel lets a process like the gateway make a PID namespace with its mount namespace (as root; in a
    user namespace of its own otherwise), asked of the kernel directly (a fresh process, not tierwise's probe)."""
    flags = 0x20000000 | 0x00020000 | (0x10000000 if os.geteuid() != 0 else 0)  # CLONE_NEWPID | NEWNS (| NEWUSER)
    r = subprocess.run([sys.executable, "-I", "-S", "-c", f"import ctypes\nraise SystemExit(ctypes.CDLL(None)"
                        f".unshare({flags}) != 0)"], capture_output=True, timeout=60)
    return r.returncode == 0


def _pids(stdout: str) -> list[int]:
    line = next((x for x in stdout.splitlines() if x.startswith("PIDS ")), None)
    assert line is not None, stdout
    return [int(v) for v in line.split()[1:]]


async def test_a_weak_run_sees_no_pid_of_the_host() -> None:
    """Before: `PIDS <host pid> <the gateway's pid> <a host tid> <the gateway's pid>`: the gateway named by getppid and
    as the holder of its lock. Now the run is PID 2, its parent our init (1), its thread 3, and a holder outside its
    namespace reads 0 (the kernel's answer for a PID the caller cannot see)."""
    if not _pid_namespace():
        return
    fd = os.open(os.path.realpath(os.__file__), os.O_RDONLY)
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH)
        r = await run_python(PIDS, limits=SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256, threads=True),
                             audit_hook=False)
    finally:
        os.close(fd)
    assert r.ok, r.stderr
    pid, parent, thread, holder = _pids(r.stdout)
    assert os.getpid() not in (pid, parent, holder)
    assert (pid, parent, holder) == (2, 1, 0), r.stdout
    assert thread < pid + 64, r.stdout  # a PID of its namespace (the host's counter is far beyond)
    assert "pidns" in r.layers


def test_the_run_of_a_gateway_that_is_not_root_sees_no_pid_of_the_host() -> None:
    """A gateway that is not root makes its weak run's mounts in a user namespace; there the run was the gateway's own
    user and `getppid` its PID (the filter refuses signals to it; its /proc files are root's). Now the same namespace
    tree: the gateway's PID is nowhere in what the run learns."""
    if os.geteuid() == 0 and not _user_namespaces():
        unavailable("an unprivileged user may not make a user namespace here")
    if not _pid_namespace():
        return
    fd = os.open(os.path.realpath(os.__file__), os.O_RDONLY)
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH)  # (this process holds it: the run would name its PID)
        out = _gateway_runs(PIDS.replace(THREAD, "") + "print('GW', GATEWAY)\n")  # (one task: no thread)
    finally:
        os.close(fd)
    gateway = int(next(x for x in out.splitlines() if x.startswith("GW "))[3:])
    pid, parent, _, holder = _pids(out)
    assert not {gateway, os.getpid()} & {pid, parent, holder}, out
    assert (pid, parent, holder) == (2, 1, 0), out
    assert "'pidns'" in out, out


async def test_a_weak_run_ends_as_its_program_ended() -> None:
    """The run's end passes through the init and the keeper unchanged: its exit status, the signal that killed it
    (RLIMIT_CPU's SIGXCPU reaches the run: a namespace's init ignores signals it has no handler for, so the run
    itself is not PID 1), its output and its input."""
    _read_only_host()
    r = await run_python("import sys\nprint(input())\nsys.exit(3)", stdin="echo\n", limits=LIMITS, audit_hook=False)
    assert (r.returncode, r.stdout.strip(), r.signal) == (3, "echo", None), r.stderr
    r = await run_python("while True:\n    pass", limits=SandboxLimits(wall_s=30, cpu_s=1, memory_mb=256),
                         audit_hook=False)
    assert (r.signal, r.timed_out) == ("SIGXCPU", False), (r.returncode, r.stderr)
    r = await run_python("import os\nos.abort()", limits=LIMITS, audit_hook=False)
    assert r.signal == "SIGABRT", (r.returncode, r.stderr)
    r = await run_python("import time\ntime.sleep(60)", limits=SandboxLimits(wall_s=2, memory_mb=256),
                         audit_hook=False)
    assert r.timed_out and r.signal == "SIGKILL"


async def test_no_process_of_a_weak_run_holds_the_gateways_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keeper and the init are the gateway's forks until they exec: exec'd with the gateway's environment (the
    provider keys) they showed it in /proc/<pid>/environ, readable by every process of their user (the gateway's own,
    where it is not root: the gateway itself is made not dumpable for that reason). Every process below the gateway
    during a run has an empty environment, but for what the run is given (bwrap.ENVIRONMENT)."""
    count = 3 if _pid_namespace() else 1  # (the keeper, the init and the run; the run alone without the namespace)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    run = asyncio.create_task(run_python("import time\nprint('STARTED', flush=True)\ntime.sleep(30)",
                                         limits=SandboxLimits(wall_s=60, memory_mb=256), audit_hook=False))
    seen: dict[int, bytes] = {}
    try:
        for _ in range(600):  # until the run's three processes are there (at most a minute on a loaded machine)
            await asyncio.sleep(0.1)
            procs = processes_below(os.getpid())
            if len(procs) >= count:
                await asyncio.sleep(0.5)  # (each has exec'd: the run prints nothing we wait for)
                for pid in processes_below(os.getpid()):
                    with contextlib.suppress(OSError), open(f"/proc/{pid}/environ", "rb") as fh:
                        seen[pid] = fh.read()
                break
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
    assert len(seen) >= count, seen
    assert not [pid for pid, env in seen.items() if SECRET.encode() in env], seen
    allowed = {f"{name}={value}".encode() for name, value in bwrap.ENVIRONMENT}  # (the run's own)
    # (and its home, its own folder: session 37)
    assert not [pid for pid, env in seen.items()
                if {x for x in set(env.split(b"\0")) - {b""} - allowed if not (x.startswith(b"HOME=") and b"/tierwise-sandbox-" in x)}], seen


THREADS = threads_program(40, stack=1 << 20)


@pytest.mark.parametrize("mode", ["bwrap", "weak"])
async def test_a_run_with_threads_starts_as_many_as_its_memory_holds(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """glibc's malloc arenas (one per allocating thread, up to 8 per CPU, 64 MB of address space each) ate RLIMIT_AS:
    `STARTED 37` at 256 MB with 1 MB stacks on a 2-CPU machine (fewer with more CPUs). One arena: all 40."""
    if mode == "bwrap":
        monkeypatch.undo()  # (the module's fixture hides bubblewrap)
        sandbox.status.cache_clear()
        sandbox.configure()
        if not backend.status().strong:
            unavailable("bubblewrap cannot run here")
    elif not backend.weak_read_only_host() and not weak.folder_root():
        unavailable("the weak sandbox is refused here")
    r = await run_python(THREADS, limits=SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256, threads=True),
                         audit_hook=False)
    assert "STARTED 40" in r.stdout, (r.stdout, r.stderr[-500:])
    assert ("bwrap" in r.layers) == (mode == "bwrap")


SHARED_MEMORY = """
import errno, multiprocessing, os
from multiprocessing.pool import ThreadPool
lock = multiprocessing.Lock()
with lock:
    print("LOCK held")
with ThreadPool(2) as pool:
    print("POOL", pool.map(abs, [-1, -2, 3]))
q = multiprocessing.Queue()
q.put("x")
print("QUEUE", q.get(timeout=5))
print("SHM", sorted(os.listdir("/dev/shm")), oct(os.stat("/dev/shm").st_mode & 0o7777))
try:
    with open("/dev/shm/fill", "wb") as fh:
        for _ in range(64):
            fh.write(b"x" * (1 << 20))
    print("FILLED 64 MB")
except OSError as e:
    print("FILL", errno.errorcode[e.errno], os.path.getsize("/dev/shm/fill") >> 20, "MB")
for name in ("/dev/x", "/dev/null2"):
    try:
        os.mkdir(name)
        print("MADE", name)
    except OSError as e:
        print("DEV", errno.errorcode[e.errno])
"""


async def test_a_bubblewrap_run_with_threads_has_shared_memory_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """No /dev/shm in bubblewrap runs: `multiprocessing.Lock()` (sem_open) raised FileNotFoundError, and so did
    `multiprocessing.Queue` and the thread-only `multiprocessing.pool.ThreadPool` (it makes a SimpleQueue). Now a
    tmpfs of the run's own of bwrap.SHM_MB (filling it stops there); the rest of /dev stays read-only."""
    monkeypatch.undo()  # (the module's fixture hides bubblewrap)
    sandbox.status.cache_clear()
    sandbox.configure()
    if not backend.status().strong:
        unavailable("bubblewrap cannot run here")
    r = await run_python(SHARED_MEMORY, limits=SandboxLimits(wall_s=30, cpu_s=10, memory_mb=256, threads=True),
                         audit_hook=False)
    assert "LOCK held" in r.stdout and "POOL [1, 2, 3]" in r.stdout and "QUEUE x" in r.stdout, r.stderr[-800:]
    assert "SHM [] 0o1777" in r.stdout, r.stdout
    filled = next(x for x in r.stdout.splitlines() if x.startswith(("FILL", "FILLED")))
    assert filled.startswith("FILL ENOSPC ") and int(filled.split()[2]) <= bwrap.SHM_MB, r.stdout
    assert r.stdout.count("DEV EROFS") == 2, r.stdout


async def test_the_pid_namespace_is_a_layer_where_the_kernel_allows_one() -> None:
    """`pidns` is claimed exactly where the kernel lets the gateway make a PID namespace; the read-only host does not
    depend on it (review36a)."""
    _read_only_host()
    allowed = _kernel_pid_namespace()
    assert backend.weak_pid_namespace() == allowed
    r = await run_python("import os\nprint('PIDS', os.getpid(), os.getppid(), 0, 0)", limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert "readonly_host" in r.layers and ("pidns" in r.layers) == allowed, r.layers
    assert (_pids(r.stdout)[:2] == [2, 1]) == allowed, r.stdout


# A gateway on a kernel (or under a container's seccomp profile) that allows the mount namespace but refuses
# CLONE_NEWPID: its own seccomp filter answers EPERM to unshare and clone with that flag, then it runs a weak run.
GATEWAY_WITHOUT_PID_NAMESPACES = "import asyncio, os, sys\n" + REFUSE_PID_NAMESPACES + WEAK_GATEWAY + """
print("READ_ONLY", backend.weak_read_only_host())
from tierwise.commands.doctor import sandbox_report
from tierwise.config import Config
print("DOCTOR", sandbox_report(Config.model_validate({"sandbox": {"allow_weak": True}})))
r = asyncio.run(run_python(sys.argv[1], limits=SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256), audit_hook=False))
print("LAYERS", r.layers)
print("END", r.returncode, r.signal, os.getpid())
print(r.stdout, r.stderr[-500:])
"""
WITHOUT_PID_NAMESPACE = """
import errno, os, sys
print("PIDS", os.getpid(), os.getppid(), 0, 0)
for path in ("/tmp/tw-review36a", "/usr/tw-review36a"):
    try:
        open(path, "w")
        print("WROTE", path)
    except OSError as e:
        print("REFUSED", errno.errorcode[e.errno])
try:
    print("PROC", os.listdir("/proc"))
except OSError as e:
    print("PROC", errno.errorcode[e.errno])  # (Landlock's answer, where the kernel has it)
sys.exit(3)
"""


def test_a_kernel_refusing_pid_namespaces_keeps_the_read_only_host() -> None:
    """sandbox17 made the read-only-host probe require the PID namespace: where the kernel allows a mount namespace but
    refuses CLONE_NEWPID, weak runs dropped to Landlock alone (the host in sight, the folder on /dev/shm). Now the
    host stays read-only and covered, /proc hidden; only `pidns` is not claimed, and the run ends as its program did."""
    _read_only_host()
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")
    r = subprocess.run([sys.executable, "-c", GATEWAY_WITHOUT_PID_NAMESPACES, WITHOUT_PID_NAMESPACE],
                       capture_output=True, text=True, timeout=180, cwd="/tmp",
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": src})
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    assert "READ_ONLY True" in out, out
    assert "the host read-only" in out and "the host's PIDs in sight" in out, out  # (doctor)
    layers = next(x for x in out.splitlines() if x.startswith("LAYERS "))
    assert "'readonly_host'" in layers and "'pidns'" not in layers, layers
    end = next(x for x in out.splitlines() if x.startswith("END ")).split()
    assert end[1:3] == ["3", "None"], out
    pid, parent = _pids(out)[:2]
    # (the host's PIDs: no keeper, no init; since session 37 getppid answers 0 there, not the gateway's PID)
    assert parent == 0 and pid not in (2, int(end[3])), out
    assert "WROTE" not in out and out.count("REFUSED") == 2 and ("PROC []" in out or "PROC EACCES" in out), out
