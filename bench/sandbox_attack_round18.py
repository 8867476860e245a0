"""Session 37's sandbox attack round (bench/RESULTS.md "Sandbox round 18"): what a hostile run does in each mode, OS
layer alone (no audit hook). Not a test: it prints what it saw.

    PYTHONPATH=src .venv/bin/python bench/sandbox_attack_round18.py [--mode bwrap|weak|landlock ...] [--only NAME ...]

- `hostpids`: what a run learns of and reaches in the host's processes: its own and its parent's PID, the living PIDs
  it tells by `stat` of /proc/<pid> (and their owners), what it opens or reads in /proc, signals and ptrace.
- `keeper`: `kill(0, SIGUSR1)` with a handler of its own, at the Landlock ABI of this kernel and as if it were 5 (no
  signal scope): does the signal reach a process of ours outside the run (the run's end says so)? Also its own PID,
  PID 1 and tgkill(1, 1) (the test's program, tests/security/sandbox_programs.py SIGNALS).
- `ordinary`: programs a model writes: /dev/stdout, /dev/fd/N, multiprocessing.Pool, ProcessPoolExecutor, flock.
- `exhaust`: resources a run takes: processes, pipes, socket pairs, eventfds/timerfds, inotify, /dev/shm, its folder.
- `reach`: abstract unix sockets, TCP to loopback (the gateway, Redis), the gateway's files.
- `crossfd`: while another run sleeps, a run looks for processes of its own user by `stat` of /proc/<pid> and opens
  their /proc/<pid>/fd/0-2 (the other run's output pipes: a forged verdict line).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sandbox_attack_round11 import command_line, run_attacks  # noqa: E402 (one way to pick a mode)
from tests.security.sandbox_programs import CROSS_ATTACK, CROSS_VICTIM, SIGNALS  # noqa: E402 (the tests')

HOSTPIDS = """
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
me, parent = os.getpid(), os.getppid()
print("getpid", me, "getppid", parent)
alive, owners = 0, {}
for pid in range(1, 70000):
    try:
        st = os.stat(f"/proc/{pid}")
    except OSError:
        continue
    alive += 1
    owners[st.st_uid] = owners.get(st.st_uid, 0) + 1
print("stat /proc/<pid>: alive", alive, "owners", sorted(owners.items()))
def attempt(name, fn):
    try:
        r = fn()
        print(name, "ok", repr(r)[:60])
    except OSError as e:
        print(name, "refused", e.errno)
attempt("listdir /proc", lambda: len(os.listdir("/proc")))
attempt("read /proc/self/status", lambda: open("/proc/self/status").read(20))
attempt("read /proc/<parent>/cmdline", lambda: open(f"/proc/{parent}/cmdline").read(60))
attempt("read /proc/<parent>/environ", lambda: open(f"/proc/{parent}/environ").read(60))
attempt("readlink /proc/<parent>/exe", lambda: os.readlink(f"/proc/{parent}/exe"))
attempt("readlink /proc/<parent>/cwd", lambda: os.readlink(f"/proc/{parent}/cwd"))
attempt("readlink /proc/1/exe", lambda: os.readlink("/proc/1/exe"))
attempt("readlink /proc/self/exe", lambda: os.readlink("/proc/self/exe"))
attempt("kill(parent, 0)", lambda: os.kill(parent, 0))
attempt("kill(-1, 0)", lambda: os.kill(-1, 0))
attempt("kill(0, 0)", lambda: os.kill(0, 0))
def ptrace():
    if libc.ptrace(16, parent, 0, 0) != 0:  # PTRACE_ATTACH
        raise OSError(ctypes.get_errno(), "ptrace")
attempt("ptrace(ATTACH, parent)", ptrace)
def pidfd():
    r = libc.syscall(434, parent, 0)
    if r < 0:
        raise OSError(ctypes.get_errno(), "pidfd_open")
attempt("pidfd_open(parent)", pidfd)
def vm():
    buf = ctypes.create_string_buffer(8)
    local = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 8)
    remote = (ctypes.c_void_p * 2)(0x400000, 8)
    if libc.syscall(310, parent, local, 1, remote, 1, 0) < 0:
        raise OSError(ctypes.get_errno(), "process_vm_readv")
attempt("process_vm_readv(parent)", vm)
attempt("getpgid(parent)", lambda: os.getpgid(parent))
"""


TRY = """
def attempt(name, fn):
    try:
        r = fn()
        print(name, "ok", repr(r)[:70])
    except BaseException as e:
        print(name, "FAILS", type(e).__name__, str(e)[:90])
"""

ORDINARY = TRY + """
import os, sys, signal, time, tempfile, subprocess, fcntl, sqlite3, asyncio, socket, pathlib, getpass, shutil
def pool():
    import multiprocessing
    with multiprocessing.Pool(2) as p:
        return p.map(abs, [-1, -2])
def executor():
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(2) as ex:
        return list(ex.map(abs, [-1, -2]))
def threadpool():
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as ex:
        return list(ex.map(abs, [-1, -2]))
def own_signal():
    got = []
    signal.signal(signal.SIGTERM, lambda *_: got.append(1))
    os.kill(os.getpid(), signal.SIGTERM)
    return got
def flock():
    with open("lockfile", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        return "locked"
attempt("open /dev/stdout", lambda: open("/dev/stdout", "w").write(""))
attempt("open /dev/fd/1", lambda: open("/dev/fd/1", "w").write(""))
attempt("open /dev/stdin", lambda: open("/dev/stdin").read())
attempt("multiprocessing.Pool", pool)
attempt("ProcessPoolExecutor", executor)
attempt("ThreadPoolExecutor", threadpool)
attempt("subprocess.run", lambda: subprocess.run([sys.executable, "-c", "1"]).returncode)
attempt("os.kill(getpid)", own_signal)
attempt("flock", flock)
attempt("tempfile.mkstemp", lambda: tempfile.mkstemp()[1])
attempt("tempfile.gettempdir", tempfile.gettempdir)
attempt("sqlite3 file", lambda: sqlite3.connect("db.sqlite").execute("create table t(x)").fetchall())
attempt("asyncio", lambda: asyncio.run(asyncio.sleep(0)))
attempt("socketpair", lambda: socket.socketpair()[0].send(b"x"))
attempt("Path.home", pathlib.Path.home)
attempt("getpass.getuser", getpass.getuser)
attempt("os.cpu_count", os.cpu_count)
attempt("shutil.disk_usage", lambda: shutil.disk_usage("."))
attempt("signal.alarm", lambda: signal.alarm(0))
attempt("zoneinfo", lambda: __import__("zoneinfo").ZoneInfo("Europe/Stockholm").key)
attempt("locale", lambda: __import__("locale").setlocale(__import__("locale").LC_ALL, ""))
"""

EXHAUST = TRY + """
import ctypes, mmap, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def count(make):
    held = []
    try:
        while len(held) < 100000:
            held.append(make())
    except BaseException as e:
        got = len(held), type(e).__name__
    else:
        got = len(held), "no limit met"
    for h in held:
        for x in (h if isinstance(h, tuple) else (h,)):
            os.close(x) if isinstance(x, int) else x.close()
    return got
def syscall(n, *a):
    r = libc.syscall(n, *a)
    if r < 0:
        raise OSError(ctypes.get_errno(), "call %d" % n)
    return r
attempt("fork", os.fork)
attempt("posix_spawn", lambda: os.posix_spawn("/bin/true", ["true"], {}))
attempt("pipes", lambda: count(os.pipe))
attempt("socketpairs", lambda: count(socket.socketpair))
attempt("eventfd", lambda: count(lambda: os.eventfd(0)))
attempt("timerfd", lambda: count(lambda: syscall(283, 1, 0)))
attempt("epoll", lambda: count(lambda: syscall(291, 0)))
attempt("inotify_init1", lambda: syscall(294, 0))
attempt("fanotify_init", lambda: syscall(300, 0x200, 0))
attempt("memfd_create", lambda: os.memfd_create("x"))
attempt("userfaultfd", lambda: syscall(323, 0))
attempt("io_uring_setup", lambda: syscall(425, 8, ctypes.create_string_buffer(120)))
def shm():
    n = 0
    with open("/dev/shm/fill", "wb") as fh:
        try:
            while n < 256:
                fh.write(b"x" * (1 << 20)); fh.flush(); n += 1
        except OSError as e:
            return n, e.errno
    return n, "all"
attempt("/dev/shm MB", shm)
def folder():
    n = 0
    try:
        while n < 512:
            with open("f%d" % n, "wb") as fh:
                fh.write(b"x" * (1 << 20))
            n += 1
    except OSError as e:
        return n, e.errno
    return n, "all"
attempt("folder MB", folder)
attempt("anonymous 1 GB", lambda: len(mmap.mmap(-1, 1 << 30)))
"""

REACH = TRY + """
import glob, os, socket
attempt("environ", lambda: dict(os.environ))
attempt("socket AF_INET", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(("127.0.0.1", 6379)))
attempt("socket AF_UNIX", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
def abstract():
    a, b = socket.socketpair()
    a.connect("\\0tierwise")
attempt("abstract connect", abstract)
attempt("/proc/self/environ", lambda: open("/proc/self/environ").read())
attempt("/proc/self/mountinfo", lambda: open("/proc/self/mountinfo").read(80))
attempt("/proc/net/unix", lambda: open("/proc/net/unix").read(80))
attempt("/etc/passwd", lambda: open("/etc/passwd").read(40))
attempt("/root", lambda: os.listdir("/root"))
attempt("/work", lambda: os.listdir("/work"))
attempt("/tmp", lambda: os.listdir("/tmp")[:5])
attempt("/var/run", lambda: os.listdir("/var/run")[:5])
attempt("/run/redis", lambda: os.listdir("/run/redis"))
attempt("/sys/fs/cgroup", lambda: os.listdir("/sys/fs/cgroup")[:5])
attempt("tierwise.yaml under /work", lambda: glob.glob("/work/**/tierwise.yaml", recursive=True)[:3])
attempt("ledger sqlite", lambda: glob.glob("/work/*/*.sqlite*")[:3])
attempt("leftover of a run before", lambda: [p for p in ("/tmp/tierwise-leftover-18", "/dev/shm/tierwise-leftover-18",
                                             "/var/tmp/tierwise-leftover-18", "leftover") if os.path.exists(p)])
attempt("write /tmp/leftover", lambda: open("/tmp/tierwise-leftover-18", "w").write("x"))
attempt("write /dev/shm/leftover", lambda: open("/dev/shm/tierwise-leftover-18", "w").write("x"))
attempt("write /var/tmp/leftover", lambda: open("/var/tmp/tierwise-leftover-18", "w").write("x"))
open("leftover", "w").write("x")
"""


async def _run(code: str, threads: bool = False, cpu_s: int = 5) -> str:
    from tierwise.sandbox import SandboxLimits, run_python

    r = await run_python(code, limits=SandboxLimits(wall_s=60, cpu_s=cpu_s, memory_mb=256, threads=threads),
                         audit_hook=False)
    said = r.stdout.strip() or r.summary()
    if r.returncode != 0:
        said += f" | exit {r.returncode}: {r.summary()[:200]}"
    return f"{said} [layers: {', '.join(r.layers)}] (gateway {os.getpid()})"


async def _hostpids() -> str:
    return await _run(HOSTPIDS)


async def _keeper() -> str:
    from tierwise.sandbox import landlock

    said = [f"abi {landlock.abi()}: " + await _run(SIGNALS)]
    real = landlock.abi
    landlock.abi = lambda: min(5, real())  # type: ignore[assignment]  # as on a kernel before Linux 6.12
    try:
        said.append("abi 5: " + await _run(SIGNALS))
    finally:
        landlock.abi = real  # type: ignore[assignment]
    return " || ".join(said)


async def _ordinary() -> str:
    return await _run(ORDINARY)


async def _exhaust() -> str:
    return await _run(EXHAUST, cpu_s=20)


async def _reach() -> str:
    first = await _run(REACH)
    return first + "\n--- a second run: " + (await _run(REACH)).split("leftover of a run before")[1].split("\n")[0]


async def _crossfd() -> str:
    from tierwise.sandbox import SandboxLimits, run_python

    limits = SandboxLimits(wall_s=30, cpu_s=20, memory_mb=256)
    victim = asyncio.create_task(run_python(CROSS_VICTIM, limits=limits, audit_hook=False))
    await asyncio.sleep(2)
    said = await _run(CROSS_ATTACK, cpu_s=20)
    return f"{said}\n--- the other run's output: {(await victim).stdout.strip()}"


ATTACKS = {"crossfd": _crossfd, "hostpids": _hostpids, "keeper": _keeper, "ordinary": _ordinary, "exhaust": _exhaust, "reach": _reach}

if __name__ == "__main__":
    modes, only = command_line(__doc__ or "", ATTACKS)
    asyncio.run(run_attacks(modes, only, ATTACKS, one_line=False))
