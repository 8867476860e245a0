"""Session 34's review of sandbox round 15 (bench/RESULTS.md "Sandbox review 34a"): what a hostile run does to the
gateway's CPU through its output, and what it reaches of a terminal, its session and its priorities. Not a test: it
prints what it saw.

    PYTHONPATH=src .venv/bin/python bench/sandbox_review34a.py [--mode bwrap|weak|landlock ...] [--only NAME ...]

- `trickle`: 1 and 4 runs, 8 s each, asleep, or writing their output a byte a write (back to back, or 50 us apart):
  the gateway process's CPU seconds over the runs (each write that finds the gateway waiting is a read of its loop).
- `probe`: one run (OS layer alone) tells its ids, what it reaches of a terminal (/dev/tty, /dev/ptmx, TIOCSTI,
  TIOCGPGRP, TIOCSCTTY on fds 0-2), `setsid`, `setpgid`, priorities (setpriority, sched_setattr: nice, uclamp,
  deadline; SCHED_RR; ioprio_set best-effort 0 and real-time), /proc/self/autogroup, kill(0/-1/parent), F_GETLK on
  os.py, and last an x32 system call. Run it under a pseudo-terminal (the gateway a terminal's session leader, as
  `tierwise serve` in a shell): `python -c "import pty; pty.spawn([...])"`.
- `flock` (`threads=True`): what faking `flock` costs a run: two threads each take LOCK_EX on their own descriptor
  of one file of the run's folder (a `filelock`-style lock) and count how often both held it at once; then 4 threads
  write 300 rows each into one SQLite database in WAL mode (a connection each, BEGIN IMMEDIATE): rows and distinct
  counts, `integrity_check`.
- `calls`: a split check (tierwise.verifiers.checker) whose tests make 10, 500 and 2,000 calls: its time, and how
  often a pipe was paused (tierwise.sandbox.paced_output, where the tree has it).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sandbox_attack_round11 import command_line, run_attacks  # noqa: E402 (one way to pick a mode)

SLEEP = "import time\ntime.sleep({s})\n"
TRICKLE = """
import os, time
end = time.time() + {s}
n = 0
while time.time() < end:
    os.write(1, b"x")
    n += 1
    time.sleep({gap})
os.write(2, str(n).encode())
"""


async def _measure(code: str, runs: int) -> str:
    from tierwise.sandbox import SandboxLimits, backend, run_python

    backend.capacity = backend.Capacity(max(runs, 2))
    lim = SandboxLimits(wall_s=30, cpu_s=20)
    c0, w0 = time.process_time(), time.monotonic()
    rs = await asyncio.gather(*[run_python(code, limits=lim, audit_hook=False) for _ in range(runs)])
    c1, w1 = time.process_time(), time.monotonic()
    wrote = sum(int(r.stderr.strip() or 0) for r in rs)
    return f"gateway CPU {c1 - c0:.2f} s over {w1 - w0:.1f} s; {wrote} bytes written, {sum(map(len, (r.stdout for r in rs)))} read"


async def _trickle() -> str:
    lines = []
    for runs in (1, 4):
        lines.append(f"{runs} run(s) asleep: " + await _measure(SLEEP.format(s=8), runs))
        for gap in (0, 0.00005):
            lines.append(f"{runs} run(s) a byte a write, {gap} s apart: "
                         + await _measure(TRICKLE.format(s=8, gap=gap), runs))
    return "\n".join(lines)


PROBE = r'''
import os, fcntl, termios, ctypes, errno, struct, json
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
out = {}
def E(e): return errno.errorcode.get(e, str(e))
def t(name, fn):
    try: out[name] = fn()
    except OSError as e: out[name] = E(e.errno)
    except Exception as e: out[name] = repr(e)[:80]
def sc(nr, *a):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(x) for x in a])
    return r if r >= 0 else E(ctypes.get_errno())
KEEP = []
def attr(policy, flags, nice, rt=0, dl=0, per=0, umin=0, umax=1024):
    KEEP.append(ctypes.create_string_buffer(struct.pack("IIQiIQQQII", 56, policy, flags, nice, 0, rt, dl, per, umin, umax), 56))
    return ctypes.addressof(KEEP[-1])
def getlk():
    fd = os.open(os.__file__, os.O_RDONLY)
    r = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0) + bytes(4))
    return struct.unpack("hhqqi", r[:28])
t("pid ppid pgrp sid", lambda: (os.getpid(), os.getppid(), os.getpgrp(), os.getsid(0)))
t("isatty 0-2", lambda: [os.isatty(i) for i in range(3)])
t("open /dev/tty", lambda: os.open("/dev/tty", os.O_RDWR))
t("open /dev/ptmx", lambda: os.open("/dev/ptmx", os.O_RDWR))
def ioctl(i, req, arg):
    try:
        r = fcntl.ioctl(i, req, arg)
        return struct.unpack("i", r)[0] if isinstance(r, bytes) and len(r) == 4 else r
    except OSError as e:
        return E(e.errno)
for name, req, arg in (("TIOCSTI", termios.TIOCSTI, b"x"), ("TIOCGPGRP", termios.TIOCGPGRP, bytes(4)),
                       ("TIOCSCTTY", termios.TIOCSCTTY, 0), ("TIOCNOTTY", termios.TIOCNOTTY, 0)):
    out[name + " 0-2"] = [ioctl(i, req, arg) for i in range(3)]
t("setsid", lambda: sc(112))
t("setpgid(0,0)", lambda: sc(109, 0, 0))
t("nice", lambda: os.getpriority(os.PRIO_PROCESS, 0))
t("setpriority(self, 0)", lambda: os.setpriority(os.PRIO_PROCESS, 0, 0))
t("setpriority(pgrp, 19)", lambda: os.setpriority(os.PRIO_PGRP, 0, 19))
t("setpriority(user, 19)", lambda: os.setpriority(os.PRIO_USER, 0, 19))
t("sched_setattr nice 0", lambda: sc(314, 0, attr(0, 0, 0), 0))
t("sched_setattr uclamp 1024", lambda: sc(314, 0, attr(0, 0x8 | 0x20 | 0x40, out["nice"], umin=1024), 0))
t("sched_setattr deadline", lambda: sc(314, 0, attr(6, 0, 0, 10**6, 10**7, 10**7), 0))
t("SCHED_RR", lambda: os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1)))
t("ioprio_set(self, BE 0)", lambda: sc(251, 1, 0, (2 << 13) | 0))
t("ioprio_set(self, RT 0)", lambda: sc(251, 1, 0, (1 << 13) | 0))
t("write /proc/self/autogroup 0", lambda: open("/proc/self/autogroup", "w").write("0"))
t("kill(0, 0)", lambda: sc(62, 0, 0))
t("kill(-1, 0)", lambda: sc(62, -1, 0))
t("kill(ppid, 0)", lambda: sc(62, os.getppid(), 0))
t("F_GETLK os.py", getlk)
print(json.dumps(out), flush=True)
r = libc.syscall(ctypes.c_long(0x40000000 | 112))
print("x32 setsid returned", r, flush=True)
'''


async def _probe() -> str:
    from tierwise.sandbox import SandboxLimits, run_python

    r = await run_python(PROBE, limits=SandboxLimits(wall_s=20), audit_hook=False)
    lines = r.stdout.strip().splitlines()
    said = json.loads(lines[0]) if lines and lines[0].startswith("{") else {}
    rest = " ".join(lines[1:]) or f"(then {r.summary()})"
    return "; ".join(f"{k}: {v}" for k, v in said.items()) + f"; x32 call: {rest}"


FLOCK = r"""
import fcntl, os, sqlite3, threading, time
both, held, rounds = [0], [0], 400
def worker():
    fd = os.open("lock", os.O_RDWR | os.O_CREAT)
    for _ in range(rounds):
        fcntl.flock(fd, fcntl.LOCK_EX)
        held[0] += 1
        if held[0] > 1:
            both[0] += 1
        time.sleep(0.0002)
        held[0] -= 1
        fcntl.flock(fd, fcntl.LOCK_UN)
ts = [threading.Thread(target=worker) for _ in range(2)]
[t.start() for t in ts]; [t.join() for t in ts]
db = sqlite3.connect("w.db"); db.execute("PRAGMA journal_mode=WAL"); db.execute("CREATE TABLE t(n)"); db.commit()
def writer():
    c = sqlite3.connect("w.db", timeout=30, isolation_level=None)
    for _ in range(300):
        c.execute("BEGIN IMMEDIATE")
        (n,) = c.execute("SELECT count(*) FROM t").fetchone()
        c.execute("INSERT INTO t VALUES (?)", (n,))
        c.execute("COMMIT")
ws = [threading.Thread(target=writer) for _ in range(4)]
[w.start() for w in ws]; [w.join() for w in ws]
rows, distinct = db.execute("SELECT count(*), count(DISTINCT n) FROM t").fetchone()
print(f"flock between two threads: both held it {both[0]} of {2 * rounds} times; "
      f"SQLite WAL 4 threads: {rows} rows, {distinct} distinct counts, {db.execute('PRAGMA integrity_check').fetchone()[0]}")
"""


async def _flock() -> str:
    from tierwise.sandbox import SandboxLimits, run_python

    r = await run_python(FLOCK, limits=SandboxLimits(wall_s=60, cpu_s=30, memory_mb=256, threads=True),
                         audit_hook=False)
    return r.stdout.strip() or r.summary()


async def _calls() -> str:
    from tierwise.sandbox import SandboxLimits, backend
    from tierwise.verifiers import checker

    paused = [0]
    try:
        from tierwise.sandbox import paced_output
    except ImportError:
        paced_output = None  # type: ignore[assignment]
    if paced_output is not None:
        resume = paced_output.PacedProtocol._resume

        def counted(self: paced_output.PacedProtocol, fd: int) -> None:
            paused[0] += 1
            resume(self, fd)

        paced_output.PacedProtocol._resume = counted  # type: ignore[method-assign]
    backend.capacity = backend.Capacity(2)
    lines = []
    for n in (10, 500, 2000):
        paused[0] = 0
        t0 = time.monotonic()
        r = await checker.check("def f(x):\n    return x\n", f"for i in range({n}):\n    assert f(i) == i\n",
                                SandboxLimits(wall_s=60, cpu_s=20))
        lines.append(f"{n} calls: passed {r.passed} in {time.monotonic() - t0:.2f} s, pipes paused {paused[0]} times")
    if paced_output is not None:
        paced_output.PacedProtocol._resume = resume  # type: ignore[method-assign]
    return "; ".join(lines)


if __name__ == "__main__":
    modes, only = command_line(__doc__, ["trickle", "probe", "flock", "calls"])
    print(f"gateway: pid {os.getpid()} sid {os.getsid(0)} pgrp {os.getpgrp()} "
          f"terminal {os.ttyname(0) if os.isatty(0) else None}", flush=True)
    asyncio.run(run_attacks(modes, only, {"trickle": _trickle, "probe": _probe, "calls": _calls, "flock": _flock}, one_line=False))
