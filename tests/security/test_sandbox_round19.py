"""Sandbox round 19 (bench/RESULTS.md "Sandbox round 19 (session 38, sandbox19)").

- Two runs that both have threads passed bits through a process-shared futex on a word of libc's code (review37c
  closed it for one-task runs only): a threaded run's process-shared waits now sleep nowhere either (EAGAIN with no
  timeout, ETIMEDOUT with one) and its wakes wake nothing; multiprocessing's primitives still work among its threads.
- F_GETLK stays (it tells of a host process's lock on a file the run may read, with its host PID under Landlock
  alone): refused, SQLite's WAL mode failed to open ("disk I/O error"; it asks F_GETLK of its -shm file). A guard.
- Under Landlock alone a run's PID and its threads' ids are the host's (no filter hides them): doctor says so.
- A threaded run's ThreadPool under Landlock alone (no /dev/shm) was told fork and subprocess are refused: a hint of
  its own now.
- System calls a newer libseccomp names (statmount, listmount, getxattrat...) had no rule in a filter it built: ENOSYS
  by number now.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.sandbox_programs import FUTEX_HEAD
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tests.security.test_sandbox_review37c import futex_pair_passes_nothing
from tierwise.sandbox import SandboxLimits, run_python

LIMITS = SandboxLimits(wall_s=40, cpu_s=20, memory_mb=256)
THREADED = SandboxLimits(wall_s=40, cpu_s=20, memory_mb=256, threads=True)

# A waiter with no timeout (FUTEX_WAIT, FUTEX_WAIT_BITSET with NULL), without the private flag; where nothing else woke
# it within 3 s a thread of its own does (a process-shared wake), so it never waits for the wall clock.
UNTIMED_WAITER = FUTEX_HEAD + r"""
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


async def test_two_runs_with_threads_pass_nothing_through_a_futex_on_a_shared_library_page(mode: str) -> None:  # noqa: F811
    """Before: the waiter (threads on) was woken by the other run (threads on) 4 of 4 times, and the waker told so."""
    waited = await futex_pair_passes_nothing(UNTIMED_WAITER, THREADED, THREADED)
    assert waited.count("not woken 11") == 4, waited  # EAGAIN: glibc looks at the word again


async def test_two_runs_with_threads_under_landlock_alone_pass_nothing_through_a_futex(landlock_alone: None) -> None:
    await futex_pair_passes_nothing(UNTIMED_WAITER, THREADED, THREADED)


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



SQLITE_WAL = r"""
import sqlite3
a, b = sqlite3.connect("d.db"), sqlite3.connect("d.db")
a.execute("create table t(x)")
a.execute("pragma journal_mode=wal")
a.execute("insert into t values (1)")
a.commit()
print("wal", b.execute("select count(*) from t").fetchone()[0])
"""


async def test_sqlite_s_wal_mode_works_in_a_run(mode: str) -> None:  # noqa: F811
    """Seen failing (disk I/O error) with F_GETLK refused (EINVAL): why a run is still told of other processes' locks."""
    r = await run_python(SQLITE_WAL, limits=LIMITS, audit_hook=False)
    assert r.ok and "wal 1" in r.stdout, (r.summary(), r.stdout)


def test_doctor_says_a_run_under_landlock_alone_has_the_host_s_pid_and_thread_ids(landlock_alone: None) -> None:
    """Under Landlock alone a run's PID and its threads' ids are the host's (the C library keeps them in the run's
    memory: no filter hides them); with threads they read the host's PID counter, a channel between two such runs (30 of
    32 bits at 4 bits/s, bench/sandbox_round19.py --only tids). Before: doctor named neither."""
    from tierwise.commands.doctor import sandbox_report
    from tierwise.config import Config

    ok, text = sandbox_report(Config.model_validate({"sandbox": {"allow_weak": True}}))
    assert ok, text
    assert "threads' ids are the host's" in text and "PID counter" in text, text


async def test_a_run_under_landlock_alone_reads_host_ids_a_bubblewrap_run_its_own(mode: str) -> None:  # noqa: F811
    """What doctor's line rests on, bubblewrap's side: a run with threads in a PID namespace reads small ids of its own."""
    code = "import os, threading\nt = threading.Thread(target=lambda: print('TID', threading.get_native_id()))\n" \
           "t.start(); t.join()\nprint('PID', os.getpid())"
    r = await run_python(code, limits=THREADED, audit_hook=False)
    assert r.ok and "PID 2" in r.stdout and "TID 3" in r.stdout, (r.summary(), r.stdout)


THREAD_POOL = "import multiprocessing.pool\nwith multiprocessing.pool.ThreadPool(2) as p:\n    print(p.map(abs, [-1]))\n"


async def test_a_threaded_run_under_landlock_alone_refused_a_thread_pool_is_told_why(landlock_alone: None) -> None:
    """Under Landlock alone a run has no /dev/shm: a ThreadPool (threads allowed) fails at its semaphore. Before: the
    hint said fork, subprocess and multiprocessing.Pool are refused and to use threads, which it had."""
    from tierwise.sandbox.limits import SEMLOCK_HINT

    r = await run_python(THREAD_POOL, limits=THREADED, audit_hook=False)
    assert not r.ok and r.summary().endswith(SEMLOCK_HINT), r.summary()
    assert "ThreadPool" in SEMLOCK_HINT and "threading.Lock" in SEMLOCK_HINT


# System calls newer than this machine's libseccomp (it knows up to futex_requeue, 456): every number past the last it
# knows answers ENOSYS, but a host whose libseccomp knows them (2.6 names Linux 6.13's) had no rule for them: the
# host's mount table (listmount, statmount), extended attributes read or removed by path (getxattrat, listxattrat,
# removexattrat: what XATTR_READS_BY_PATH and PATH_METADATA refuse), a tree's clone (open_tree_attr) and inode flags
# by path (file_getattr, file_setattr). Simulated here: the filter built as if libseccomp knew every number to 469.
NEWER = r"""
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
L, P = ctypes.c_long, ctypes.c_void_p
buf = ctypes.create_string_buffer(4096)
req = ctypes.create_string_buffer(struct.pack("IIQQ", 24, 0, 0xFFFFFFFFFFFFFFFF, 0))
path, name = os.__file__.encode(), b"user.x"
args = ctypes.create_string_buffer(struct.pack("QII", ctypes.addressof(buf), 64, 0))
calls = {"statmount": (457, req, P(ctypes.addressof(buf)), L(4096), L(0)),
         "listmount": (458, req, P(ctypes.addressof(buf)), L(64), L(0)),
         "getxattrat": (464, L(-100), path, L(0), name, args, L(16)),
         "listxattrat": (465, L(-100), path, L(0), P(ctypes.addressof(buf)), L(4096)),
         "removexattrat": (466, L(-100), b"main.py", L(0), name),
         "open_tree_attr": (467, L(-100), b"/", L(1), P(0), L(0)),
         "file_getattr": (468, L(-100), path, P(ctypes.addressof(buf)), L(24), L(0)),
         "file_setattr": (469, L(-100), b"main.py", P(ctypes.addressof(buf)), L(24), L(0))}
for call, (number, *rest) in calls.items():
    ctypes.set_errno(0)
    r = libc.syscall(L(number), *rest)
    print(call, r, ctypes.get_errno() if r < 0 else 0, flush=True)
"""


@pytest.fixture
def knows_every_syscall(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The filter built as by a libseccomp that knows every system call to Linux 6.17's file_setattr (469)."""
    import pyseccomp

    from tierwise.sandbox import seccomp_filter, weak

    known = pyseccomp.resolve_syscall

    def resolve(arch: object, syscall: int | str) -> int | bytes:
        if isinstance(syscall, str) or syscall <= 456:
            return known(arch, syscall)
        if syscall > 469:
            raise ValueError(syscall)
        return b"named"

    monkeypatch.setattr(pyseccomp, "resolve_syscall", resolve)
    seccomp_filter.filter_bpf.cache_clear()
    weak._filter_loader.cache_clear()
    yield
    seccomp_filter.filter_bpf.cache_clear()
    weak._filter_loader.cache_clear()


def _all_refused(out: str) -> None:
    lines = [line.split() for line in out.splitlines()]
    assert len(lines) == 8 and all(line[1:] == ["-1", "38"] for line in lines), out


async def test_newer_system_calls_answer_enosys_whatever_libseccomp_knows(mode: str,  # noqa: F811
                                                                           knows_every_syscall: None) -> None:
    """Before (filter as by a libseccomp knowing to 469): listmount answered the mount ids, getxattrat ENODATA (reached
    the file), file_getattr its flags."""
    r = await run_python(NEWER, limits=LIMITS, audit_hook=False)
    assert r.ok, r.summary()
    _all_refused(r.stdout)


async def test_newer_system_calls_answer_enosys_under_landlock_alone(landlock_alone: None,
                                                                     knows_every_syscall: None) -> None:
    r = await run_python(NEWER, limits=LIMITS, audit_hook=False)
    assert r.ok, r.summary()
    _all_refused(r.stdout)
