"""review38a: sandbox round 19 attacked as a hostile run (bench/RESULTS.md "Sandbox round 19 under review (session 38,
review38a)").

- Priority-inheritance futexes name their owner by thread id, looked up in the run's PID namespace: under Landlock
  alone (the host's) FUTEX_TRYLOCK_PI on a word of the run's own memory told a living host task (EAGAIN) from a free
  id (ESRCH) and a kernel thread (EPERM), and FUTEX_LOCK_PI slept until the named host task exited. Every PI command
  answers ENOSYS now, private or not, in every mode.
- A libseccomp that names calls newer than this machine's (2.6) let lsm_list_modules, lsm_get_self_attr,
  lsm_set_self_attr and mseal through: every number past the last this filter was reviewed against (456) answers
  ENOSYS now, whatever libseccomp knows.
- `setpgid(tid, 0)` told a host process's thread (EINVAL) from anything else (ESRCH) under Landlock alone, and Yama's
  PR_SET_PTRACER looks a PID up too: setpgid aimed at a PID other than 0 and PR_SET_PTRACER are refused (EPERM).
"""

from __future__ import annotations

import asyncio
import os

from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tests.security.test_sandbox_round19 import knows_every_syscall  # noqa: F401 (the fixture)
from tierwise.sandbox import SandboxLimits, run_python

LIMITS = SandboxLimits(wall_s=40, cpu_s=20, memory_mb=256)
THREADED = SandboxLimits(wall_s=40, cpu_s=20, memory_mb=256, threads=True)

# Each PI command, with and without FUTEX_PRIVATE_FLAG, on a word of the run's own memory holding the id of a living
# task (the test's process: the host's under Landlock alone), of a free id (above any pid_max) and of PID 2 (kthreadd
# in the host's namespace); LOCK_PI and LOCK_PI2 with a 0.3 s timeout.
PI = r"""
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
L, P = ctypes.c_long, ctypes.c_void_p
class TS(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
word, other = ctypes.c_uint32(0), ctypes.c_uint32(0)
for command, name in ((6, "LOCK_PI"), (7, "UNLOCK_PI"), (8, "TRYLOCK_PI"), (11, "WAIT_REQUEUE_PI"),
                      (12, "CMP_REQUEUE_PI"), (13, "LOCK_PI2")):
    for private in (0, 128):
        for owner, tid in (("living", LIVING), ("free", 0x3FFFFFF0), ("kthread", 2)):
            word.value = tid
            t = time.time() + 0.3 if command == 6 else time.clock_gettime(time.CLOCK_MONOTONIC) + 0.3
            ts = ctypes.byref(TS(int(t), int(t % 1 * 1e9)))
            ctypes.set_errno(0)
            r = libc.syscall(L(202), ctypes.byref(word), L(command | private), L(1), ts, ctypes.byref(other), L(0))
            print(name, private, owner, r, ctypes.get_errno() if r < 0 else 0, flush=True)
"""


def _all_enosys(out: str) -> None:
    lines = [line.split() for line in out.splitlines()]
    assert len(lines) == 36 and all(line[3:] == ["-1", "38"] for line in lines), out


async def test_priority_inheritance_futexes_answer_enosys(mode: str) -> None:  # noqa: F811
    for limits in (LIMITS, THREADED):
        r = await run_python(PI.replace("LIVING", str(os.getpid())), limits=limits, audit_hook=False)
        assert r.ok, r.summary()
        _all_enosys(r.stdout)


async def test_priority_inheritance_futexes_tell_no_host_task_under_landlock_alone(landlock_alone: None) -> None:
    """Before: TRYLOCK_PI answered EAGAIN for the test's PID, ESRCH for a free id and EPERM for kthreadd; LOCK_PI on the
    test's PID slept its 0.3 s (ETIMEDOUT), and on a host task's id until that task exited."""
    for limits in (LIMITS, THREADED):
        r = await run_python(PI.replace("LIVING", str(os.getpid())), limits=limits, audit_hook=False)
        assert r.ok, r.summary()
        _all_enosys(r.stdout)


# Calls of Linux 6.8-6.10 that a libseccomp naming them (2.6) left through (this machine's 2.5.4 knows up to 456, so they
# were ENOSYS here only): the host's security modules listed, the run's own attributes read and set, its mappings sealed.
NEWER = r"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
L, P = ctypes.c_long, ctypes.c_void_p
buf, size = ctypes.create_string_buffer(4096), ctypes.c_uint32(4096)
calls = {"lsm_get_self_attr": (459, L(100), buf, ctypes.byref(size), L(0)),
         "lsm_set_self_attr": (460, L(100), buf, L(0), L(0)),
         "lsm_list_modules": (461, buf, ctypes.byref(size), L(0)),
         "mseal": (462, P(0), L(0), L(0))}
for call, (number, *rest) in calls.items():
    size.value = 4096
    ctypes.set_errno(0)
    r = libc.syscall(L(number), *rest)
    print(call, r, ctypes.get_errno() if r < 0 else 0, flush=True)
"""


def _newer_refused(out: str) -> None:
    lines = [line.split() for line in out.splitlines()]
    assert len(lines) == 4 and all(line[1:] == ["-1", "38"] for line in lines), out


async def test_calls_past_the_reviewed_table_answer_enosys_whatever_libseccomp_knows(
        mode: str, knows_every_syscall: None) -> None:  # noqa: F811
    """Before (filter as by a libseccomp knowing to 469): lsm_list_modules answered the host's modules (4 here),
    lsm_get_self_attr EOPNOTSUPP and lsm_set_self_attr EINVAL (both reached), mseal 0."""
    r = await run_python(NEWER, limits=LIMITS, audit_hook=False)
    assert r.ok, r.summary()
    _newer_refused(r.stdout)


async def test_calls_past_the_reviewed_table_answer_enosys_under_landlock_alone(landlock_alone: None,
                                                                                knows_every_syscall: None) -> None:  # noqa: F811
    r = await run_python(NEWER, limits=LIMITS, audit_hook=False)
    assert r.ok, r.summary()
    _newer_refused(r.stdout)


SETPGID = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
for name, tid in (("thread", THREAD), ("process", PROCESS), ("free", 0x3FFFFFF0)):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(109), ctypes.c_long(tid), ctypes.c_long(0))
    print(name, r, ctypes.get_errno() if r < 0 else 0)
try:
    os.setpgid(0, 0)
    print("own ok")
except OSError as e:
    print("own", e.errno)
"""


async def _setpgid() -> str:
    import threading

    ids: list[int] = []
    done = threading.Event()
    thread = threading.Thread(target=lambda: (ids.append(threading.get_native_id()), done.wait(60)))
    thread.start()
    try:
        while not ids:
            await asyncio.sleep(0.01)
        code = SETPGID.replace("THREAD", str(ids[0])).replace("PROCESS", str(os.getpid()))
        r = await run_python(code, limits=LIMITS, audit_hook=False)
    finally:
        done.set()
        thread.join()
    assert r.ok, r.summary()
    return r.stdout


async def test_setpgid_tells_no_host_thread_under_landlock_alone(landlock_alone: None) -> None:
    """Before: `setpgid(tid, 0)` answered EINVAL (22) for a thread of this process and ESRCH (3) for the process itself
    and a free id: which host ids are threads, and when they end."""
    out = await _setpgid()
    assert all(f"{name} -1 1" in out for name in ("thread", "process", "free")), out


async def test_setpgid_of_itself_by_zero_still_works(mode: str) -> None:  # noqa: F811
    out = await _setpgid()
    assert "own ok" in out and "thread -1 1" in out, out


PTRACER = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for tid in (os.getpid(), 0x3FFFFFF0, (1 << 32) | os.getpid()):
    ctypes.set_errno(0)
    print("PR_SET_PTRACER", libc.prctl(ctypes.c_long(0x59616D61), ctypes.c_ulong(tid), 0, 0, 0), ctypes.get_errno())
"""


async def test_yama_ptracer_is_refused(mode: str) -> None:  # noqa: F811
    """With Yama (Ubuntu's default) PR_SET_PTRACER answers 0 for a living PID and EINVAL for a free one, in the host's
    namespace under Landlock alone (kernel source: yama_task_prctl). Before: EINVAL here (no Yama) rather than EPERM."""
    r = await run_python(PTRACER, limits=LIMITS, audit_hook=False)
    assert r.ok, r.summary()
    assert r.stdout.count("PR_SET_PTRACER -1 1\n") == 3, r.stdout
