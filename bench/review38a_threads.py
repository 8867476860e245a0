"""review38a (bench/RESULTS.md "Sandbox round 19 under review (session 38, review38a)"): legitimate threaded programs
in a run with threads after round 19 (process-shared futex waits EAGAIN/ETIMEDOUT) and review38a (PI futexes ENOSYS),
beside the same program on the host. Not a test: it prints what it saw.

    PYTHONPATH=src .venv/bin/python bench/review38a_threads.py [--mode bwrap|weak|landlock ...] [--only NAME ...]

- `waits`: timed waits of threading.Condition, Event, Lock, queue.Queue.get and concurrent.futures.wait (0.2 s each,
  nothing comes): the time each took (round 19 answers a timed process-shared wait ETIMEDOUT at once: an early return
  would show here).
- `work`: a ThreadPoolExecutor summing 8 chunks, queue.Queue producer/consumer (20,000 items), asyncio.to_thread,
  sqlite3 from 4 threads on one file, numpy matmul from 4 threads: each result checked, the whole's wall and CPU.
- `oracle`: FUTEX_TRYLOCK_PI (shared and private) on a word of the run's own memory naming this process's PID, a free
  id and PID 2; FUTEX_LOCK_PI naming a `sleep 2` started here just before: its answer and when (the attack review38a
  closed: under Landlock alone the run's PID namespace is the host's); `setpgid(tid, 0)` naming a thread of this
  process, this process and a free id.
- `variants`: process-shared futex calls round 19's rules might miss, each in a run of its own: x32 FUTEX_WAIT, bit 32
  of `op` set, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME with bitset 1, `futex_wait` with bit 32 of its flags set,
  `futex_wake` shared, FUTEX_LOCK_PI2 | FUTEX_CLOCK_REALTIME: (result, errno) or how the run ended.
- `pi`: a PTHREAD_PRIO_INHERIT mutex through the C library (what PI futexes serve): does lock/unlock still work.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sandbox_attack_round11 import command_line, run_attacks  # noqa: E402 (one way to pick a mode)
from tests.security.sandbox_programs import FUTEX_HEAD  # noqa: E402

WAITS = r"""
import concurrent.futures, queue, threading, time
def took(f):
    t = time.monotonic(); r = f(); return f"{time.monotonic() - t:.2f}s->{r}"
cond, ev, lock, q = threading.Condition(), threading.Event(), threading.Lock(), queue.Queue()
lock.acquire()
def cond_wait():
    with cond:
        return cond.wait(0.2)
def q_get():
    try:
        return q.get(timeout=0.2)
    except queue.Empty:
        return "Empty"
with concurrent.futures.ThreadPoolExecutor(1) as ex:
    fut = ex.submit(time.sleep, 0.6)
    print("futures.wait", took(lambda: len(concurrent.futures.wait([fut], timeout=0.2)[0])), "Condition.wait", took(cond_wait), "Event.wait", took(lambda: ev.wait(0.2)), "Lock.acquire",
          took(lambda: lock.acquire(timeout=0.2)), "Queue.get", took(q_get))
"""
WORK = r"""
import asyncio, concurrent.futures, os, queue, sqlite3, threading, time
c, w = time.process_time(), time.monotonic()
ok = []
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    ok.append(sum(ex.map(lambda k: sum(range(k * 10**5, (k + 1) * 10**5)), range(8))) == sum(range(8 * 10**5)))
q, out = queue.Queue(maxsize=64), []
def consume():
    while (item := q.get()) is not None:
        out.append(item)
t = threading.Thread(target=consume); t.start()
for i in range(20000):
    q.put(i)
q.put(None); t.join()
ok.append(sum(out) == sum(range(20000)))
async def main():
    return sum(await asyncio.gather(*(asyncio.to_thread(pow, k, 2) for k in range(50))))
ok.append(asyncio.run(main()) == sum(k * k for k in range(50)))
db = sqlite3.connect("t.db"); db.execute("create table t(x)"); db.commit(); db.close()
def insert(k):
    con = sqlite3.connect("t.db", timeout=10)
    for i in range(50):
        con.execute("insert into t values (?)", (k,)); con.commit()
    con.close()
ts = [threading.Thread(target=insert, args=(k,)) for k in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
ok.append(sqlite3.connect("t.db").execute("select count(*) from t").fetchone()[0] == 200)
try:
    import numpy as np
    a = np.arange(40000, dtype=float).reshape(200, 200) / 40000
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        rs = list(ex.map(lambda _: float((a @ a).sum()), range(4)))
    ok.append(len(set(rs)) == 1)
except ImportError:
    ok.append("no numpy")
print("results", ok, f"wall {time.monotonic() - w:.2f} s, CPU {time.process_time() - c:.2f} s")
"""
ORACLE = r"""
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
L, P = ctypes.c_long, ctypes.c_void_p
word = ctypes.c_uint32(0)
def pi(op, tid):
    word.value = tid
    ctypes.set_errno(0)
    r = libc.syscall(L(202), ctypes.byref(word), L(op), L(0), P(0), P(0), L(0))
    return r if r >= 0 else -ctypes.get_errno()
said = [f"TRYLOCK_PI{'' if private else ' shared'} {who} {pi(8 | private, tid)}" for private in (0, 128)
        for who, tid in (("gateway", GATEWAY), ("free", 0x3FFFFFF0), ("pid2", 2))]
t = time.monotonic()
said.append(f"LOCK_PI shared victim {pi(6, VICTIM)} after {time.monotonic() - t:.2f} s")
for who, tid in (("gateway thread", THREAD), ("gateway", GATEWAY), ("free", 0x3FFFFFF0)):
    ctypes.set_errno(0)
    said.append(f"setpgid {who} {libc.syscall(L(109), L(tid), L(0))} {ctypes.get_errno()}")
print(", ".join(said))
"""
VARIANTS = {
    "x32 FUTEX_WAIT": "print(call(L(0x40000000 | 202), P(addr), L(0), L(word), ctypes.byref(TS(1, 0)), P(0), L(0)))",
    "op bit 32": "print(call(L(202), P(addr), L(1 << 32), L(word), P(0), P(0), L(0)))",
    "BITSET|REALTIME": "t = time.time() + 1\n"
                       "print(call(L(202), P(addr), L(9 | 256), L(word), ctypes.byref(TS(int(t), 0)), P(0), L(1)))",
    "futex_wait flags bit 32": "print(call(L(455), P(addr), L(word), L(-1), L((1 << 32) | 2), P(0), L(1)))",
    "futex_wake shared": "print(call(L(454), P(addr), L(-1), L(1), L(2)))",
    "LOCK_PI2|REALTIME": "w = ctypes.c_uint32(1)\nprint(call(L(202), ctypes.byref(w), L(13 | 256), L(0), P(0), P(0), L(0)))",
}


async def _variants() -> str:
    return ", ".join([f"{name} {await _threaded(FUTEX_HEAD + body)}" for name, body in VARIANTS.items()])


PI = r"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
attr, mutex = ctypes.create_string_buffer(64), ctypes.create_string_buffer(64)
libc.pthread_mutexattr_init(attr)
print("setprotocol(PRIO_INHERIT)", libc.pthread_mutexattr_setprotocol(attr, 1), "init", libc.pthread_mutex_init(mutex, attr),
      "lock", libc.pthread_mutex_lock(mutex), "trylock", libc.pthread_mutex_trylock(mutex), "unlock",
      libc.pthread_mutex_unlock(mutex))
"""


async def _threaded(code: str) -> str:
    from tierwise.sandbox import SandboxLimits, run_python

    r = await run_python(code, limits=SandboxLimits(wall_s=60, cpu_s=20, memory_mb=512, threads=True), audit_hook=False)
    return r.stdout.strip() or r.summary()


def host(code: str) -> str:
    """The same program on the host, in a fresh folder."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    return done.stdout.strip() or done.stderr.strip()[-300:]


async def _oracle() -> str:
    import threading

    ids: list[int] = []
    done = threading.Event()
    thread = threading.Thread(target=lambda: (ids.append(threading.get_native_id()), done.wait(60)))
    thread.start()
    victim = subprocess.Popen(["sleep", "2"])
    try:
        while not ids:
            await asyncio.sleep(0.01)
        return await _threaded(ORACLE.replace("GATEWAY", str(os.getpid())).replace("VICTIM", str(victim.pid))
                               .replace("THREAD", str(ids[0])))
    finally:
        victim.wait()
        done.set()
        thread.join()


ATTACKS = {"waits": lambda: _threaded(WAITS), "work": lambda: _threaded(WORK), "oracle": _oracle,
           "variants": _variants, "pi": lambda: _threaded(PI)}

if __name__ == "__main__":
    modes, only = command_line(__doc__ or "", ATTACKS)
    for name, code in (("waits", WAITS), ("work", WORK), ("pi", PI)):  # (the oracle's names are the host's there)
        if not only or name in only:
            print(f"[host] {name}: {host(code)}", flush=True)
    asyncio.run(run_attacks(modes, only, ATTACKS))
