"""Session 38's sandbox round (bench/RESULTS.md "Sandbox round 19 (session 38, sandbox19)"): what a hostile run does in
each mode, OS layer alone (no audit hook). Not a test: it prints what it saw.

    PYTHONPATH=src .venv/bin/python bench/sandbox_round19.py [--mode bwrap|weak|landlock ...] [--only NAME ...]

- `spin`: a run with threads where one thread holds a `multiprocessing.Lock` for 1 s and another waits for it: the
  wait's wall time and the CPU it took (process-shared futex waits answer EAGAIN in a threaded run since session 38).
- `getlk`: this process holds a read lock on the standard library's os.py; the run asks F_GETLK and F_OFD_GETLK of it.
- `hostpid`: the run's PID, its threads' ids and what the C library keeps of them, beside this process's PID.
- `tids`: bits from a run with threads to another run through the host's PID counter: the sender starts threads
  through a 1 slot, the receiver starts one thread at each slot's start and end and reads the ids' difference.
- `stop`: a run stops itself (SIGSTOP, SIGTSTP): how long until it ends, and how.
- `limits`: raising each rlimit's hard limit, what fds 0-2 are, /proc/self/* (the gateway's environment or command
  line would be there), the environment and / as the run sees them.
- `leftover`: a run leaves a folder tree of mode 000, 150 levels deep, a name with a newline, a symlink to
  /etc/passwd: is its folder still there after it (weak and Landlock-alone runs; a bubblewrap run's is its tmpfs)?
- `cost`: a run with threads passing 20,000 items through two queue.Queues (private futexes through the filter):
  its CPU time (median of 5 runs); run with PYTHONPATH of a base tree and of this one to compare.
- `churn`: a run with threads starts and joins threads for 2 s: how many host PIDs it took (the host's PID counter read
  by starting a process here before and after it), against `kernel.pid_max`.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sandbox_attack_round11 import command_line, run_attacks  # noqa: E402 (one way to pick a mode)

SPIN = r"""
import multiprocessing, threading, time
lock = multiprocessing.Lock()
def hold():
    with lock:
        time.sleep(1.0)
for _ in range(3):
    t = threading.Thread(target=hold); t.start(); time.sleep(0.05)
    c0, w0 = time.process_time(), time.monotonic()
    with lock:
        pass
    print(f"waited {time.monotonic() - w0:.2f} s wall, {time.process_time() - c0:.2f} s CPU")
    t.join()
"""
GETLK = r"""
import fcntl, os, struct
FLOCK = "hhqqi4x"
with open(os.__file__, "rb") as fh:
    for name, command in (("F_GETLK", fcntl.F_GETLK), ("F_OFD_GETLK", 36)):
        try:
            kind, _, _, _, pid = struct.unpack(FLOCK, fcntl.fcntl(fh, command, struct.pack(FLOCK, fcntl.F_WRLCK, 0, 0,
                                                                                                 0, 0)))
            print(name, {fcntl.F_RDLCK: "F_RDLCK", fcntl.F_WRLCK: "F_WRLCK"}.get(kind, "F_UNLCK"), "pid", pid)
        except OSError as e:
            print(name, "refused", e.errno)
"""
HOSTPID = r"""
import ctypes, os, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
ids = []
t = threading.Thread(target=lambda: ids.append(threading.get_native_id()))
t.start(); t.join()
print("getpid", os.getpid(), "gettid", libc.syscall(186), "a thread's id", ids,
      "set_tid_address answers", libc.syscall(218, ctypes.c_void_p(0)))
"""
SLOT, MESSAGE = 0.25, "10110010011101000110101100101101"
TID_COMMON = r"""
import threading, time
START, SLOT, N = {start}, {slot}, {n}
def tid():
    got = []
    t = threading.Thread(target=lambda: got.append(threading.get_native_id()))
    t.start(); t.join()
    return got[0]
"""
TID_RECEIVER = TID_COMMON + r"""
deltas = []
for i in range(N):
    time.sleep(max(0, START + (i + 0.05) * SLOT - time.time()))
    a = tid()
    time.sleep(max(0, START + (i + 0.95) * SLOT - time.time()))
    deltas.append(tid() - a)
cut = sorted(deltas)[len(deltas) // 2]
print("RECEIVED", "".join("1" if d > cut else "0" for d in deltas), "deltas", deltas)
"""
TID_SENDER = TID_COMMON + r"""
message, made = "{message}", 0
for i, bit in enumerate(message):
    time.sleep(max(0, START + (i + 0.1) * SLOT - time.time()))
    while bit == "1" and time.time() < START + (i + 0.9) * SLOT and made < 100000:
        tid(); made += 1
print("THREADS", made)
"""
STOP = r"""
import os, signal, time
print("stopping", flush=True)
os.kill(os.getpid(), signal.{sig})
print("resumed", flush=True)
"""


def _limits(threads: bool = False, wall_s: float = 30) -> object:
    from tierwise.sandbox import SandboxLimits

    return SandboxLimits(wall_s=wall_s, cpu_s=20, memory_mb=256, threads=threads)


async def _run(code: str, threads: bool = False, wall_s: float = 30) -> str:
    from tierwise.sandbox import run_python

    r = await run_python(code, limits=_limits(threads, wall_s), audit_hook=False)  # type: ignore[arg-type]
    return r.stdout.strip() if r.ok else f"{r.summary()} {r.stdout.strip()}"


async def spin() -> str:
    return await _run(SPIN, threads=True)


async def getlk() -> str:
    with open(os.__file__, "rb") as fh:
        fcntl.fcntl(fh, fcntl.F_SETLK, struct.pack("hhqqi4x", fcntl.F_RDLCK, 0, 0, 0, 0))
        return f"(this process {os.getpid()}) " + await _run(GETLK)


async def hostpid() -> str:
    return f"(this process {os.getpid()}) " + await _run(HOSTPID, threads=True)


async def tids() -> str:
    from tierwise.sandbox import run_python

    start = time.time() + 4.0
    fill = {"start": repr(start), "slot": SLOT, "n": len(MESSAGE), "message": MESSAGE}
    got, sent = await asyncio.gather(run_python(TID_RECEIVER.format(**fill), limits=_limits(True, 60), audit_hook=False),
                                     run_python(TID_SENDER.format(**fill), limits=_limits(True, 60), audit_hook=False))
    words = got.stdout.split()
    bits = words[1] if got.ok and len(words) > 1 else got.summary()
    right = sum(a == b for a, b in zip(bits, MESSAGE, strict=False)) if len(bits) == len(MESSAGE) else 0
    return (f"sent {MESSAGE} received {bits}: {right} of {len(MESSAGE)} right ({1 / SLOT:.0f} bits/s offered); "
            f"{sent.stdout.strip() or sent.summary()}; {' '.join(words[2:])[:200]}")


async def stop() -> str:
    said = []
    for sig in ("SIGSTOP", "SIGTSTP"):
        t0 = time.monotonic()
        out = await _run(STOP.replace("{sig}", sig), wall_s=5)
        said.append(f"{sig}: {out} after {time.monotonic() - t0:.1f} s (wall_s 5)")
    return "; ".join(said)


CHURN = r"""
import threading, time
made, end = 0, time.monotonic() + 2
while time.monotonic() < end:
    t = threading.Thread(target=int); t.start(); t.join(); made += 1
print("THREADS", made)
"""


def _host_pid() -> int:
    return int(subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True).stdout)


async def churn() -> str:
    with open("/proc/sys/kernel/pid_max") as fh:
        pid_max = int(fh.read())
    before = _host_pid()
    out = await _run(CHURN, threads=True)
    after = _host_pid()
    return f"{out}; host PID counter moved {(after - before) % pid_max} (pid_max {pid_max}; the run's start included)"


PINGPONG = r"""
import queue, threading, time
a, b = queue.Queue(), queue.Queue()
def echo():
    while (x := a.get()) is not None:
        b.put(x)
t = threading.Thread(target=echo); t.start()
c0 = time.process_time()
for i in range(20000):
    a.put(i); b.get()
a.put(None); t.join()
print(f"{time.process_time() - c0:.3f}")
"""


async def cost() -> str:
    said = sorted([float(await _run(PINGPONG, threads=True)) for _ in range(5)])
    return f"CPU s for 20,000 round trips: median {said[2]:.3f} (all {said})"


LIMITS_PROBE = r"""
import os, resource, stat, fcntl
def t(name, fn):
    try:
        print(name, "ok", repr(fn())[:150])
    except Exception as e:
        print(name, "refused", type(e).__name__, getattr(e, "errno", ""))
for r in ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_CORE", "RLIMIT_MEMLOCK", "RLIMIT_SIGPENDING"):
    n = getattr(resource, r); cur = resource.getrlimit(n)
    t(f"{r}{cur} hard raised", lambda: resource.setrlimit(n, (cur[0], resource.RLIM_INFINITY)))
for fd in (0, 1, 2):
    t(f"fd{fd}", lambda: (stat.filemode(os.fstat(fd).st_mode), oct(fcntl.fcntl(fd, fcntl.F_GETFL))))
for p in ("/proc/self/environ", "/proc/self/cmdline", "/proc/self/mountinfo", "/proc/self/cgroup", "/proc/self/status"):
    t(p, lambda: open(p, "rb").read(100))
t("environ", lambda: sorted(os.environ))
t("listdir /", lambda: os.listdir("/"))
"""
LEFTOVER = r"""
import os
print("CWD", os.getcwd())
os.makedirs("a/b/c"); open("a/b/c/f", "w").write("x")
for d in ("a/b/c", "a/b", "a"):
    os.chmod(d, 0)
p = "d"
for i in range(150):
    os.mkdir(p); os.chdir(p)
os.chdir(os.environ["HOME"])
open("new\nline", "w").write("x")
os.symlink("/etc/passwd", "link")
print("DONE")
"""


async def limits() -> str:
    return await _run(LIMITS_PROBE)


async def leftover() -> str:
    out = await _run(LEFTOVER)
    cwd = next((line.split()[1] for line in out.splitlines() if line.startswith("CWD")), "")
    await asyncio.sleep(0.5)
    if cwd == "/work":
        return f"{out}; its folder is bubblewrap's tmpfs (the host's /work is another)"
    return f"{out}; its folder {cwd} after the run: {'LEFT' if cwd and os.path.lexists(cwd) else 'gone'}"


ATTACKS = {"limits": limits, "leftover": leftover, "cost": cost, "churn": churn, "spin": spin, "getlk": getlk, "hostpid": hostpid, "tids": tids, "stop": stop}

if __name__ == "__main__":
    modes, only = command_line(__doc__, ATTACKS)
    asyncio.run(run_attacks(modes, only, ATTACKS))
