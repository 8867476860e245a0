"""Sandbox round 19 (bench/RESULTS.md "Sandbox round 19 (session 38, sandbox19)").

- Two runs that both have threads passed bits through a process-shared futex on a word of libc's code (review37c
  closed it for one-task runs only): a threaded run's process-shared waits now sleep nowhere either (EAGAIN with no
  timeout, ETIMEDOUT with one) and its wakes wake nothing; multiprocessing's primitives still work among its threads.
"""

from __future__ import annotations

import asyncio

from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tests.security.test_sandbox_review37c import _FUTEX, FUTEX_WAKER
from tierwise.sandbox import SandboxLimits, run_python

THREADED = SandboxLimits(wall_s=40, cpu_s=20, memory_mb=256, threads=True)

# A waiter with no timeout (FUTEX_WAIT, FUTEX_WAIT_BITSET with NULL), without the private flag; where nothing else woke
# it within 3 s a thread of its own does (a process-shared wake), so it never waits for the wall clock.
UNTIMED_WAITER = _FUTEX + r"""
import threading
def wait(op):
    done = threading.Event()
    def backstop():
        if not done.wait(3):
            call(L(202), P(addr), L(1), L(1), P(0), P(0), L(0))
    t = threading.Thread(target=backstop)
    t.start()
    start = time.monotonic()
    r, e = call(L(202), P(addr), L(op), L(word), P(0), P(0), L(0xFFFFFFFF))
    done.set()
    t.join()
    return r, e, time.monotonic() - start
for op, name in ((0, "FUTEX_WAIT"), (9, "FUTEX_WAIT_BITSET"), (0, "FUTEX_WAIT"), (9, "FUTEX_WAIT_BITSET")):
    r, e, took = wait(op)
    print(name, "woken" if r == 0 and took < 2.5 else f"not woken {e}", flush=True)
    time.sleep(0.5)
print("WAITER DONE")
"""


async def _pair(waiter: str) -> tuple[str, str]:
    waiting = asyncio.create_task(run_python(waiter, limits=THREADED, audit_hook=False))
    await asyncio.sleep(0.5)
    woke = await run_python(FUTEX_WAKER, limits=THREADED, audit_hook=False)
    w = await waiting
    assert w.ok and woke.ok, (w.summary(), woke.summary())
    assert "WAITER DONE" in w.stdout, w.stdout
    return w.stdout, woke.stdout


async def test_two_runs_with_threads_pass_nothing_through_a_futex_on_a_shared_library_page(mode: str) -> None:  # noqa: F811
    """Before: the waiter (threads on) was woken by the other run (threads on) 4 of 4 times, and the waker told so."""
    waited, woke = await _pair(UNTIMED_WAITER)
    assert "woken" not in waited.replace("not woken", ""), waited
    assert waited.count("not woken 11") == 4, waited  # EAGAIN: glibc looks at the word again
    assert "WOKE 0" in woke, (woke, waited)


async def test_two_runs_with_threads_under_landlock_alone_pass_nothing_through_a_futex(landlock_alone: None) -> None:
    waited, woke = await _pair(UNTIMED_WAITER)
    assert "woken" not in waited.replace("not woken", ""), waited
    assert "WOKE 0" in woke, (woke, waited)


# multiprocessing's primitives are named semaphores (process-shared futexes): contended among threads they still
# exclude, hand over and time out.
PRIMITIVES = r"""
import multiprocessing, multiprocessing.pool, threading, time
lock, total = multiprocessing.Lock(), [0]
def add():
    for _ in range(200):
        with lock:
            seen = total[0]
            time.sleep(0)
            total[0] = seen + 1
threads = [threading.Thread(target=add) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print("total", total[0])
def hold():
    with lock:
        time.sleep(0.3)
t = threading.Thread(target=hold)
t.start()
time.sleep(0.05)
print("timed", lock.acquire(timeout=0.1))
with lock:
    print("after holder")
t.join()
s = multiprocessing.Semaphore(0)
threading.Timer(0.1, s.release).start()
print("semaphore", s.acquire())
q = multiprocessing.Queue()
threading.Timer(0.1, lambda: q.put(5)).start()
print("queue", q.get())
with multiprocessing.pool.ThreadPool(4) as pool:
    print("pool", sum(pool.map(abs, range(-500, 500))))
"""


async def test_multiprocessing_primitives_still_work_among_a_run_s_threads(mode: str) -> None:  # noqa: F811
    r = await run_python(PRIMITIVES, limits=THREADED, audit_hook=False)
    assert r.ok, r.summary()
    for line in ("total 800", "after holder", "semaphore True", "queue 5", "pool 250000"):
        assert line in r.stdout, r.stdout
    assert "timed False" in r.stdout, r.stdout
