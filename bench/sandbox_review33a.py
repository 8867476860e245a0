"""review33a's attack on sandbox round 14 (bench/RESULTS.md "Review of sandbox14"). Not a test: it prints what it saw.

    PYTHONPATH=src .venv/bin/python bench/sandbox_review33a.py [--mode bwrap|weak|landlock ...] [--only NAME ...]

Modes as bench/sandbox_attack_round11.py's. Attacks:
- `calls`: what a run is answered for the lock calls (F_SETLK, F_GETLK, F_OFD_*, the 64-bit commands, flock, lockf,
  leases), io_uring, keyrings, queues, shared memory, memfd, POSIX timers, inotify, epoll, timerfd, eventfd, fork,
  posix_spawn, threads, ptys, /dev/shm, its folder's parent, /tmp, /proc, getrusage, CLOCK_BOOTTIME, times,
  affinity; then an x32 call and an i386 call by `int 0x80` (each in a run of its own: they kill it).
- `sqlite` (only with --only): 4 threads (`threads=True`), a connection each, 300 transactions of read-count-then-insert,
  BEGIN IMMEDIATE or deferred, rollback or WAL journal: rows, distinct counts read (1,200: serialised), integrity.
- `getlk` (only with --only): the gateway holds a POSIX read lock on os.py; what a run's F_GETLK answers.
- `flock`: two runs at once; one holds or drops LOCK_EX on the standard library's os.py, a bit a second (8 bits), the
  other asks with LOCK_NB: the bits received.
- `timers`: two runs at once; one makes POSIX timers until refused, the other (2 s later) then: how many each made.
- `pin`: each kind of kernel object a run can make, as many as its limits let it (epoll watches, timerfds, eventfds,
  full pipes, full socket pairs, POSIX timers and blocked real-time signals, flocks): the run's v1 memory cgroup
  (usage, kmem) against an idle run's.
- `shm`: a run polls `stat('/dev/shm')` every 20 ms for 8 s while another client's three runs start and end.
- `cancel`: runs ended by an anyio cancel scope (cancelled at every await of their end) and runs cancelled twice: the
  gateway's descriptors, its runs' cgroups and weak folders left, and 200 plain runs' descriptors.
- `transient` (in a fresh process): one EMFILE in the start's cgroup check; then three runs' cgroup layers.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sandbox_attack_round11 import _configure  # noqa: E402 (one way to pick a mode)


def _limits(**kw: object) -> object:
    from tierwise.sandbox import SandboxLimits

    return SandboxLimits(**{"wall_s": 60, "cpu_s": 10, "memory_mb": 256, **kw})  # type: ignore[arg-type]


async def _runs(*codes: str, delays: tuple[float, ...] = ()) -> list[str]:
    from tierwise.sandbox import run_python

    async def one(code: str, delay: float) -> str:
        await asyncio.sleep(delay)
        r = await run_python(code, limits=_limits(), audit_hook=False)
        return r.stdout.strip() or r.summary()

    return list(await asyncio.gather(*(one(c, d) for c, d in zip(codes, delays or (0.0,) * len(codes), strict=True))))


FLOCK_SEND = """
import fcntl, os, time
fd = os.open(os.__file__, os.O_RDONLY)
for bit in (1, 0, 1, 1, 0, 1, 0, 0):
    fcntl.flock(fd, fcntl.LOCK_EX if bit else fcntl.LOCK_UN)
    time.sleep(1)
print("sent 10110100")
"""
FLOCK_RECEIVE = """
import errno, fcntl, os, time
fd = os.open(os.__file__, os.O_RDONLY)
time.sleep(0.5)
got = ""
for _ in range(8):
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        got += "0"
    except OSError as e:
        got += "1" if e.errno == errno.EAGAIN else "?"
    time.sleep(1)
print("received", got)
"""
TIMERS = """
import ctypes, time
time.sleep({delay})
libc = ctypes.CDLL(None, use_errno=True)
n, t = 0, ctypes.c_long()
while n < 1000 and libc.timer_create(1, None, ctypes.byref(t)) == 0:
    n += 1
print("{who} made", n, "timers; errno", ctypes.get_errno())
time.sleep({hold})
"""

PIN_PRELUDE = """
import os, sys, ctypes, select, socket, signal, fcntl
libc = ctypes.CDLL(None, use_errno=True)
held, made = [], 0
def more(f):
    global made
    try:
        while True:
            held.append(f()); made += 1
    except OSError as e:
        return e.errno
def checked(fd):
    if fd < 0:
        raise OSError(ctypes.get_errno(), "")
    return fd
def full_pipe():
    r, w = os.pipe(); os.set_blocking(w, False)
    try:
        while True: os.write(w, b"x" * 65536)
    except BlockingIOError: pass
    return r, w
def full_pair():
    a, b = socket.socketpair(); a.setblocking(False); b.setblocking(False)
    for s in (a, b):
        try:
            while True: s.send(b"x" * 65536)
        except BlockingIOError: pass
    return a, b
def flocked():
    fd = os.open(os.__file__, os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_SH); return fd
"""
PIN = {
    "epoll-watches": """
eps = [select.epoll() for _ in range(30)]
fds = [fd for _ in range(15) for fd in os.pipe()]
for ep in eps:
    for fd in fds:
        ep.register(fd, select.EPOLLIN); made += 1
""",
    "timerfd": "more(lambda: checked(libc.timerfd_create(1, 0)))",
    "eventfd": "more(lambda: os.eventfd(0))",
    "pipes-filled": "more(full_pipe)",
    "socketpairs-filled": "more(full_pair)",
    "posix-timers+rt-signals": """
t = ctypes.c_long()
while made < 1000 and libc.timer_create(1, None, ctypes.byref(t)) == 0: made += 1
signal.pthread_sigmask(signal.SIG_BLOCK, range(34, 65))
queued = 0
for k in range(200):
    try: os.kill(0, 34 + k % 30); queued += 1
    except OSError: break
made = (made, queued)
""",
    "flock": "more(flocked)",
}


def _memory_cgroup(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/cgroup") as fh:
        for line in fh:
            _, names, path = line.rstrip("\n").split(":", 2)
            if "memory" in names.split(","):
                for name in ("memory.usage_in_bytes", "memory.kmem.usage_in_bytes"):
                    try:
                        out[name.split(".")[1]] = int(Path("/sys/fs/cgroup/memory" + path, name).read_text()) >> 10
                    except OSError:
                        pass
    return out


async def _held(code: str) -> tuple[str, dict[str, int]]:
    from tierwise.sandbox import runner

    async with runner.open_python(code + "\nprint('made', made, flush=True)\nsys.stdin.readline()\n",
                                  limits=_limits(), audit_hook=False) as live:  # type: ignore[arg-type]
        if live.proc is None or live.proc.stdout is None or live.proc.stdin is None:
            return str(live.refused), {}
        said = (await live.proc.stdout.readline()).decode().strip()
        seen = _memory_cgroup(live.proc.pid)
        live.proc.stdin.write(b"x\n")
    return said, seen


async def pin(mode: str) -> None:
    _, idle = await _held(PIN_PRELUDE)
    for kind, code in PIN.items():
        said, seen = await _held(PIN_PRELUDE + code)
        print(f"  {mode} pin {kind}: {said}; the run's memory cgroup KiB {seen} (an idle run's {idle})")


SHM_WATCH = """
import os, time
seen, t0 = [], time.time()
while time.time() - t0 < 8:
    try:
        st = os.stat("/dev/shm")
    except OSError as e:
        print("stat /dev/shm:", e.strerror); break
    if not seen or seen[-1][1:] != (st.st_nlink, st.st_mtime_ns):
        seen.append((round(time.time() - t0, 2), st.st_nlink, st.st_mtime_ns))
    time.sleep(0.02)
else:
    print("changes of /dev/shm (s, link count):", [(t, n) for t, n, _ in seen])
"""


async def cancel(mode: str) -> None:
    import anyio

    from tierwise.sandbox import run_python, runner

    def state() -> tuple[int, int, int]:
        groups = glob.glob(f"/sys/fs/cgroup/*/**/tierwise-{os.getpid()}-*", recursive=True)
        folders = glob.glob("/tmp/tierwise-sandbox-*") + glob.glob("/dev/shm/tierwise-sandbox-*")
        return len(os.listdir("/proc/self/fd")), len([g for g in groups if not g.endswith("-runs")]), len(folders)

    await run_python("pass", limits=_limits(), audit_hook=False)  # type: ignore[arg-type]
    before = state()
    for _ in range(200):
        await run_python("print(1)", limits=_limits(), audit_hook=False)  # type: ignore[arg-type]
    plain = state()
    for _ in range(50):
        with anyio.CancelScope() as scope:
            async with runner.open_python("import time\nprint('up', flush=True)\ntime.sleep(20)",
                                          limits=_limits(), audit_hook=False) as live:  # type: ignore[arg-type]
                assert live.proc is not None and live.proc.stdout is not None
                await live.proc.stdout.readline()
                scope.cancel()
                await anyio.sleep(30)
    await asyncio.sleep(2)
    scoped = state()
    for i in range(50):
        task = asyncio.create_task(run_python("import time; time.sleep(5)", limits=_limits(), audit_hook=False))
        await asyncio.sleep(0.5)
        task.cancel()
        await asyncio.sleep(0.001 * (i % 7))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(2)
    twice = state()
    print(f"  {mode} cancel (descriptors, runs' cgroups, run folders): start {before}; after 200 runs {plain}; "
          f"after 50 runs ended by an anyio scope {scoped}; after 50 more cancelled twice {twice}")


TRANSIENT = """
import asyncio, errno, os, sys
sys.path.insert(0, {root!r})
from bench.sandbox_attack_round11 import _configure
from tierwise.sandbox import SandboxLimits, backend, run_python
real, failed = os.mkdir, []
def once(path, *a, **k):
    if "tierwise-check-" in str(path) and str(path).startswith("/sys/fs/cgroup") and not failed:
        failed.append(path)
        raise OSError(errno.EMFILE, "Too many open files")
    return real(path, *a, **k)
os.mkdir = once
async def main():
    _configure({mode!r})
    for i in range(3):
        try:
            r = await run_python("print('ran')", limits=SandboxLimits(wall_s=30, cpu_s=5), audit_hook=False)
            print("  run", i, r.stdout.strip() or r.summary()[:120], [x for x in r.layers if x.startswith("cgroup")])
        except Exception as e:
            print("  run", i, type(e).__name__, str(e)[:160])
asyncio.run(main())
"""

CALLS = 'import sys\nsys.stdout.reconfigure(line_buffering=True)\nimport ctypes, os, fcntl, struct, errno, mmap, sys\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\ndef sc(n, *a):\n    r = libc.syscall(ctypes.c_long(n), *[ctypes.c_long(x) for x in a])\n    return r, ctypes.get_errno() if r == -1 else 0\ndef show(name, f):\n    try:\n        print(name, "OK", f())\n    except OSError as e:\n        print(name, "ERR", e.errno, errno.errorcode.get(e.errno))\n    except Exception as e:\n        print(name, "EXC", repr(e))\nfd = os.open("f", os.O_CREAT | os.O_RDWR, 0o600)\nlk = struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 1, 0)\nshow("F_SETLK", lambda: fcntl.fcntl(fd, fcntl.F_SETLK, lk))\nshow("F_GETLK", lambda: struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, lk)))\nshow("F_OFD_SETLKW", lambda: fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, lk))\nshow("F_OFD_GETLK", lambda: struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_OFD_GETLK, lk)))\nshow("F_SETLK64(13)", lambda: fcntl.fcntl(fd, 13, lk))\nshow("F_SETLKW64(14)", lambda: fcntl.fcntl(fd, 14, lk))\nshow("flock", lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))\nfd2 = os.open("f", os.O_RDWR)\nshow("flock-2nd-ofd", lambda: fcntl.flock(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB))\nshow("lockf", lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 10))\nshow("F_SETLEASE", lambda: fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK))\n# flock on a read-only shared file\nlib = os.open(os.__file__, os.O_RDONLY)\nshow("flock-stdlib-EX", lambda: fcntl.flock(lib, fcntl.LOCK_EX | fcntl.LOCK_NB))\nshow("F_GETLK-stdlib", lambda: struct.unpack("hhqqi4x", fcntl.fcntl(lib, fcntl.F_GETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0))))\n# io_uring\nshow("io_uring_setup", lambda: sc(425, 4, ctypes.addressof(ctypes.create_string_buffer(120))))\nshow("keyctl", lambda: sc(250, 0, 0))\nshow("add_key", lambda: sc(248, 0, 0, 0, 0, 0))\nshow("mq_open", lambda: sc(240, 0, 0, 0, 0))\nshow("shmget", lambda: sc(29, 0, 4096, 0o1000))\nshow("memfd", lambda: sc(319, ctypes.addressof(ctypes.create_string_buffer(b"x")), 0))\nshow("timer_create", lambda: sc(222, 1, 0, ctypes.addressof(ctypes.create_string_buffer(8))))\nshow("inotify_init1", lambda: sc(294, 0))\nshow("epoll_create1", lambda: sc(291, 0))\nshow("timerfd_create", lambda: sc(283, 1, 0))\nshow("eventfd2", lambda: sc(290, 0, 0))\nshow("fork", lambda: os.fork())\nshow("posix_spawn", lambda: os.posix_spawn("/bin/true", ["true"], {}))\nimport threading\ndef th():\n    t = threading.Thread(target=lambda: None); t.start(); t.join(); return "thread ran"\nshow("thread", th)\nshow("pty", lambda: os.openpty())\nshow("ptmx", lambda: os.open("/dev/ptmx", os.O_RDWR))\nshow("listdir-/dev/shm", lambda: os.listdir("/dev/shm")[:5])\nshow("stat-/dev/shm", lambda: (os.stat("/dev/shm").st_nlink, os.stat("/dev/shm").st_mtime))\nshow("cwd", lambda: os.getcwd())\nshow("stat-..", lambda: (os.stat("..").st_nlink, os.stat("..").st_mtime))\nshow("listdir-..", lambda: os.listdir("..")[:5])\nshow("stat-/tmp", lambda: (os.stat("/tmp").st_nlink, os.stat("/tmp").st_mtime))\nshow("proc-self-stat", lambda: open("/proc/self/stat").read()[:60])\nshow("mountinfo", lambda: open("/proc/self/mountinfo").read()[:60])\nimport resource, time\nshow("getrusage", lambda: resource.getrusage(resource.RUSAGE_SELF)[:4])\nshow("boottime", lambda: time.clock_gettime(time.CLOCK_BOOTTIME))\nshow("times", lambda: os.times())\nshow("affinity", lambda: os.sched_getaffinity(0))\nshow("getloadavg", lambda: os.getloadavg())\nshow("cpu_count", lambda: os.cpu_count())\nshow("stat-stdlib", lambda: (os.stat(os.__file__).st_atime, ))\n'
X32 = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print("x32 getpid (0x40000000 | 39):", libc.syscall(ctypes.c_long(0x40000000 | 39)), flush=True)
"""
I386 = """
import ctypes, mmap
m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
m.write(bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3]))  # mov eax, 20 (i386 getpid); int 0x80; ret
print("i386 getpid by int 0x80:", ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))(),
      flush=True)
"""


async def calls(mode: str) -> None:
    from tierwise.sandbox import run_python

    for code in (CALLS, X32, I386):
        r = await run_python(code, limits=_limits(), audit_hook=False)  # type: ignore[arg-type]
        print(f"  {mode} calls (exit {r.returncode}, signal {r.signal}):")
        print("\n".join(f"    {line}" for line in r.stdout.splitlines()) or "    (nothing)")

GETLK = """
import fcntl, os, struct
fd = os.open(os.__file__, os.O_RDONLY)
print(struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0))))
"""


async def getlk(mode: str) -> None:
    """The gateway holds a POSIX read lock on os.py; the run asks F_GETLK for a write lock."""
    import fcntl
    import struct

    from tierwise.sandbox import run_python

    fd = os.open(os.__file__, os.O_RDONLY)
    try:
        fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack("hhqqi4x", fcntl.F_RDLCK, 0, 0, 0, 0))
        r = await run_python(GETLK, limits=_limits(), audit_hook=False)  # type: ignore[arg-type]
        print(f"  {mode} getlk (host pid {os.getpid()} holds a read lock on os.py; type, whence, start, len, pid):",
              r.stdout.strip() or r.summary())
    finally:
        os.close(fd)

SQLITE = """
import sqlite3, threading
sqlite3.connect("t.db").execute("create table t (k int, v int)").connection.commit()
def work(k, wal, immediate):
    c = sqlite3.connect("t.db", timeout=30, isolation_level=None)
    if wal:
        c.execute("pragma journal_mode=wal")
    for _ in range(300):
        c.execute("begin immediate" if immediate else "begin")
        n = c.execute("select count(*) from t").fetchone()[0]
        c.execute("insert into t values (?, ?)", (k, n))
        c.execute("commit")
    c.close()
for immediate in (True, False):
    for wal in (False, True):
        ts = [threading.Thread(target=work, args=(k, wal, immediate)) for k in range(4)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        c = sqlite3.connect("t.db")
        rows, distinct = c.execute("select count(*), count(distinct v) from t").fetchone()
        print("immediate" if immediate else "deferred", "wal" if wal else "rollback", "rows", rows,
              "distinct counts", distinct, c.execute("pragma integrity_check").fetchone()[0])
        c.execute("delete from t")
        c.commit()
        c.close()
"""


async def sqlite(mode: str) -> None:
    from tierwise.sandbox import run_python

    r = await run_python(SQLITE, limits=_limits(threads=True, cpu_s=30), audit_hook=False)  # type: ignore[arg-type]
    print(f"  {mode} sqlite, 4 threads x 300 transactions:", r.stdout.strip().replace("\n", "; ") or r.summary())


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", action="append", choices=["bwrap", "weak", "landlock"])
    parser.add_argument("--only", action="append")
    args = parser.parse_args()
    only = set(args.only or ["calls", "flock", "timers", "pin", "shm", "cancel", "transient"])
    for mode in args.mode or ["bwrap", "weak", "landlock"]:
        _configure(mode)
        if "calls" in only:
            await calls(mode)
        if "sqlite" in only:
            await sqlite(mode)
        if "getlk" in only:
            await getlk(mode)
        if "flock" in only:
            print(f"  {mode} flock:", await _runs(FLOCK_SEND, FLOCK_RECEIVE))
        if "timers" in only:
            print(f"  {mode} timers:", await _runs(TIMERS.format(who="A", delay=0, hold=4),
                                                   TIMERS.format(who="B (while A holds its own)", delay=2, hold=0)))
        if "pin" in only:
            await pin(mode)
        if "shm" in only:
            watch = asyncio.create_task(_runs(SHM_WATCH))
            await asyncio.sleep(2)
            await _runs("import time; time.sleep(1)", "import time; time.sleep(1)", "import time; time.sleep(1)",
                        delays=(0.0, 1.5, 3.0))
            print(f"  {mode} shm:", (await watch)[0])
        if "cancel" in only and mode != "landlock":
            await cancel(mode)
        if "transient" in only:
            root = str(Path(__file__).resolve().parent.parent)
            out = subprocess.run([sys.executable, "-c", TRANSIENT.format(root=root, mode=mode)], capture_output=True,
                                 text=True, timeout=300, env={**os.environ})
            print(f"  {mode} transient (one EMFILE in the start's check):\n{out.stdout.rstrip() or out.stderr[-400:]}")


if __name__ == "__main__":
    asyncio.run(main())
