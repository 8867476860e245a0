"""review37c: sandbox round 18 attacked as a hostile run (bench/RESULTS.md "Sandbox review (session 37, review37c)").

- Process-shared futexes: a futex word on a page of a file is keyed by the file, not the process, and every run maps
  the same system libraries. Two runs met at a word of libc's code: one waited (FUTEX_WAIT without
  FUTEX_PRIVATE_FLAG), the other's FUTEX_WAKE woke it and was told so: a channel between runs in every mode, as flock
  was (review33a). A one-task run's process-shared waits now answer ETIMEDOUT at once.
- kill()'s PID argument compared as the whole register: a PID with high bits set (the kernel reads 32), -1, and the
  32-bit system calls through `int 0x80` reach no process but the run (guards of session 37's rule)."""

from __future__ import annotations

import asyncio

from tests.security.sandbox_programs import FUTEX_HEAD
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise.sandbox import SandboxLimits, run_python

LIMITS = SandboxLimits(wall_s=40, cpu_s=20, memory_mb=256)

# Waits of 1 s each without the private flag: FUTEX_WAIT (relative), FUTEX_WAIT_BITSET with FUTEX_CLOCK_REALTIME
# (absolute), futex_wait (Linux 6.7, absolute on CLOCK_MONOTONIC, FUTEX2_SIZE_U32 and no FUTEX2_PRIVATE).
FUTEX_WAITER = FUTEX_HEAD + r"""
def wait(kind):
    if kind == "FUTEX_WAIT":
        return call(L(202), P(addr), L(0), L(word), ctypes.byref(TS(1, 0)), P(0), L(0))
    if kind == "FUTEX_WAIT_BITSET":
        t = time.time() + 1
        return call(L(202), P(addr), L(9 | 256), L(word), ctypes.byref(TS(int(t), int(t % 1 * 1e9))), P(0),
                    L(0xFFFFFFFF))
    t = time.clock_gettime(time.CLOCK_MONOTONIC) + 1
    return call(L(455), P(addr), L(word), L(0xFFFFFFFF), L(2), ctypes.byref(TS(int(t), int(t % 1 * 1e9))),
                L(time.CLOCK_MONOTONIC))
for kind in ("FUTEX_WAIT", "FUTEX_WAIT", "FUTEX_WAIT_BITSET", "FUTEX_WAIT_BITSET", "futex_wait", "futex_wait"):
    r, e = wait(kind)
    print(kind, "woken" if r == 0 else f"not woken {e}", flush=True)
    time.sleep(0.5)  # (each wait is answered at once where refused: the waker's time still spans the six)
print("WAITER DONE")
"""
FUTEX_WAKER = FUTEX_HEAD + r"""
woke, end = 0, time.monotonic() + 12
while time.monotonic() < end:
    r, e = call(L(202), P(addr), L(1), L(1), P(0), P(0), L(0))  # FUTEX_WAKE, without the private flag
    woke += max(r, 0)
    time.sleep(0.002)
print("WOKE", woke)
"""


async def futex_pair_passes_nothing(waiter: str = FUTEX_WAITER, waiter_limits: SandboxLimits = LIMITS,
                                    waker_limits: SandboxLimits = LIMITS) -> str:
    """Run `waiter`, and FUTEX_WAKER beside it: nothing woke the waiter and the waker woke nothing. The waiter's
    output."""
    waiting = asyncio.create_task(run_python(waiter, limits=waiter_limits, audit_hook=False))
    await asyncio.sleep(0.5)
    waker = await run_python(FUTEX_WAKER, limits=waker_limits, audit_hook=False)
    w = await waiting
    assert w.ok and waker.ok, (w.summary(), waker.summary())
    assert "WAITER DONE" in w.stdout, w.stdout
    assert "woken" not in w.stdout.replace("not woken", ""), w.stdout
    assert "WOKE 0" in waker.stdout, (waker.stdout, w.stdout)
    return w.stdout


async def test_two_runs_pass_nothing_through_a_futex_on_a_shared_library_page(mode: str) -> None:  # noqa: F811
    """Before: the waiter was woken 3 of 3 times it waited with FUTEX_WAIT, and the waker told each (bwrap, weak)."""
    await futex_pair_passes_nothing()


async def test_two_runs_under_landlock_alone_pass_nothing_through_a_futex(landlock_alone: None) -> None:
    await futex_pair_passes_nothing()


async def test_a_one_task_run_wakes_no_waiter_of_a_run_with_threads(mode: str) -> None:  # noqa: F811
    """A one-task run's process-shared wakes wake nothing (answer 0), and (session 38) a run with threads sleeps on no
    process-shared word either. Before: woken 6 of 6 (bwrap, weak)."""
    threaded = SandboxLimits(wall_s=40, cpu_s=20, memory_mb=256, threads=True)
    await futex_pair_passes_nothing(waiter_limits=threaded)


LOCKS = """
import multiprocessing, threading
lock = multiprocessing.Lock()
with lock:
    print("held", lock.acquire(timeout=0.2), lock.acquire(False))
with lock:
    print("again")
t = threading.Lock()
with t:
    print("threading", t.acquire(timeout=0.2))
"""


async def test_a_one_task_run_s_locks_still_work(mode: str) -> None:  # noqa: F811
    """multiprocessing.Lock (a named semaphore: process-shared futexes) and threading.Lock (private) in a one-task run:
    taken, released, and a timed acquire of a held lock answers False (at once now, after its timeout before)."""
    r = await run_python(LOCKS, limits=LIMITS, audit_hook=False)
    assert r.ok, r.summary()
    assert "held False False" in r.stdout and "again" in r.stdout and "threading False" in r.stdout, r.stdout


PID_ARGUMENTS = r"""
import ctypes, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
L = ctypes.c_long
got = []
signal.signal(signal.SIGUSR1, lambda *_: got.append(1))
me = os.getpid()
for name, number, args in (("kill hi|0", 62, (1 << 32, 10)), ("kill hi|own", 62, ((1 << 32) | me, 10)),
                           ("kill 0xffffffff", 62, (0xFFFFFFFF, 10)), ("kill -1", 62, (-1, 10)),
                           ("kill -own", 62, (-me, 10)), ("tgkill hi|own", 234, ((1 << 32) | me, me, 10)),
                           ("tgkill hi|0", 234, (1 << 32, me, 10))):
    before = len(got)
    ctypes.set_errno(0)
    r = libc.syscall(L(number), *[L(a) for a in args])
    time.sleep(0.1)
    print(name, "refused" if r < 0 else "sent", ctypes.get_errno() if r < 0 else len(got) - before, flush=True)
print("STILL HERE", flush=True)
"""
# The 32-bit kill(0, SIGUSR1) through `int 0x80` (another architecture's table: the filter's default for a foreign
# architecture kills the run with SIGSYS before the call runs).
INT80 = r"""
import ctypes, mmap, signal
signal.signal(signal.SIGUSR1, lambda *_: print("GOT SIGUSR1", flush=True))
code = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
code.write(bytes([0x53, 0xB8, 37, 0, 0, 0, 0x31, 0xDB, 0xB9, 10, 0, 0, 0, 0xCD, 0x80, 0x5B, 0xC3]))
print("CALLING", flush=True)
print("RETURNED", ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(code)))(), flush=True)
"""


async def test_kill_s_pid_argument_with_high_bits_or_negative_reaches_nothing(mode: str) -> None:  # noqa: F811
    """The kernel reads kill's and tgkill's PID as 32 bits: `1 << 32` is kill(0), the run's group (bubblewrap's process
    outside the namespace, the weak run's keeper). Compared as the whole register, only the run's exact PID passes.
    Seen failing with session 37's kill rule taken out (`kill hi|0 sent 1`)."""
    r = await run_python(PID_ARGUMENTS, limits=LIMITS, audit_hook=False)
    assert r.ok and "STILL HERE" in r.stdout, (r.summary(), r.stdout)
    lines = [line for line in r.stdout.splitlines() if line.startswith(("kill", "tgkill"))]
    assert len(lines) == 7 and all(line.endswith("refused 1") for line in lines), r.stdout


async def test_kill_through_the_32_bit_system_calls_kills_only_the_run(mode: str) -> None:  # noqa: F811
    r = await run_python(INT80, limits=LIMITS, audit_hook=False)
    assert "CALLING" in r.stdout and "RETURNED" not in r.stdout and "GOT SIGUSR1" not in r.stdout, r.stdout
    assert r.signal == "SIGSYS", r.summary()
