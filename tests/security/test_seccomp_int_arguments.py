"""The seccomp filter's argument rules against the kernel's 32-bit arguments (review27a, bench/RESULTS.md "Review of
attack-sandbox8 and leftovers27"). seccomp sees each argument as the 64-bit register; the kernel reads an `int` or
`unsigned int` argument (prctl's option, madvise's advice, fcntl's and ioctl's command, fadvise64's advice,
setsockopt's level and name, setrlimit's and prlimit64's resource) from its low 32 bits only. A rule comparing the
whole register with EQ let every refused call through with any high bit set: a run cleared its parent-death signal,
grew a pipe to 1 MB, set F_SETSIG, paged out and offered for merging its memory, evicted the interpreter's pages.
OS layer alone (no audit hook); this test failed before the fix in both modes."""

from __future__ import annotations

import platform

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise.sandbox import SandboxLimits, run_python

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

HIGH_BITS = """
import ctypes, mmap, os, socket
""" + attempt_prelude("WENT THROUGH") + """
libc = ctypes.CDLL(None, use_errno=True)
HI = 1 << 32  # the kernel reads these arguments as 32 bits: HI | x is x to it
def call(number, *args):
    def go():
        if libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args]) == -1:
            raise OSError(ctypes.get_errno(), "refused")
    return go
area = mmap.mmap(-1, 1 << 16)
start = ctypes.addressof(ctypes.c_char.from_buffer(area))
r, w = os.pipe()
host_file = os.open(os.__file__, os.O_RDONLY)
a, b = socket.socketpair()
size = ctypes.c_int(1 << 20)
limit = (ctypes.c_ulong * 2)(0, 0)
attempt("prctl PR_SET_PDEATHSIG", call(157, HI | 1, 0, 0, 0, 0))
attempt("prctl PR_SET_MEMORY_MERGE", call(157, HI | 67, 1, 0, 0, 0))
attempt("madvise MADV_PAGEOUT", call(28, start, 1 << 16, HI | 21))
attempt("madvise MADV_MERGEABLE", call(28, start, 1 << 16, HI | 12))
attempt("fcntl F_SETPIPE_SZ", call(72, r, HI | 1031, 1 << 20))
attempt("fcntl F_SETSIG", call(72, r, HI | 10, 9))
attempt("fcntl F_SETOWN", call(72, r, HI | 8, 1))
attempt("fadvise64 DONTNEED", call(221, host_file, 0, 0, HI | 4))
attempt("setsockopt SO_RCVBUF", call(54, a.fileno(), HI | 1, HI | 8, ctypes.addressof(size), 4))
attempt("setrlimit RLIMIT_CORE", call(160, HI | 4, ctypes.addressof(limit)))
attempt("prlimit64 RLIMIT_CORE", call(302, 0, HI | 4, ctypes.addressof(limit), 0))
attempt("ioctl FIOSETOWN", call(16, a.fileno(), HI | 0x8901, ctypes.addressof(ctypes.c_int(1))))
attempt("prctl PR_SCHED_CORE", call(157, HI | 62, 0, os.getpid(), 0, 0))  # (round 9)
pair = (ctypes.c_int * 2)()
attempt("socketpair SOCK_DGRAM", call(53, 1, HI | 2, 0, ctypes.addressof(pair)))  # (round 9: the type's low 4 bits)
attempt("madvise MADV_DONTNEED", call(28, start, 1 << 16, 4))
"""

REFUSED = ("prctl PR_SET_PDEATHSIG", "prctl PR_SET_MEMORY_MERGE", "madvise MADV_PAGEOUT", "madvise MADV_MERGEABLE",
           "fcntl F_SETPIPE_SZ", "fcntl F_SETSIG", "fcntl F_SETOWN", "fadvise64 DONTNEED", "setsockopt SO_RCVBUF",
           "setrlimit RLIMIT_CORE", "prlimit64 RLIMIT_CORE", "ioctl FIOSETOWN", "prctl PR_SCHED_CORE",
           "socketpair SOCK_DGRAM")


async def test_high_bits_of_a_32_bit_argument_do_not_get_a_refused_call_through(mode: str) -> None:  # noqa: F811
    if platform.machine() != "x86_64":
        unavailable("x86_64 system call numbers")
    r = await run_python(HIGH_BITS, limits=LIMITS, audit_hook=False)
    assert r.ok, (r.stderr, r.signal)
    for name in REFUSED:
        assert f"{name} refused 1\n" in r.stdout, r.stdout
    assert "madvise MADV_DONTNEED WENT THROUGH" in r.stdout, r.stdout  # advice the allocator uses stays


X32 = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print("native", libc.syscall(ctypes.c_long(39)) > 0, flush=True)
libc.syscall(ctypes.c_long(0x40000000 | 162))  # sync through the x32 ABI: the same number space, another table
print("x32 sync returned", flush=True)
"""


async def test_a_system_call_through_the_x32_abi_kills_the_run(mode: str) -> None:  # noqa: F811
    """x32 calls come with the x86_64 architecture tag and the number's bit 30 set: a filter checking only the tag
    would let `sync` (refused natively) through as 0x40000000 | 162. libseccomp's x86_64 filter kills them (a guard:
    this held before review27a)."""
    if platform.machine() != "x86_64":
        unavailable("the x32 ABI is x86_64's")
    r = await run_python(X32, limits=LIMITS, audit_hook=False)
    assert "native True" in r.stdout, (r.stdout, r.stderr)
    assert "x32 sync returned" not in r.stdout and r.signal == "SIGSYS", r
