"""Attacks on the code sandbox through its public entry point (`run_python`), with the OS layer
alone (no audit hook): kernel memory the run's limits did not count, and system calls newer than
the filter's names. Each test failed before its fix (docs/security/sandbox.md)."""

from __future__ import annotations

import pytest

from tests.verifiers.test_sandbox import need_layer
from tierwise.sandbox import SandboxLimits, run_python

LIMITS = SandboxLimits(wall_s=30, cpu_s=10, memory_mb=256)

# Extended attributes on the run's tmpfs are kernel memory that neither RLIMIT_AS nor the tmpfs
# size counts: 64 KB values on fresh files, at most 200 of them (12 MB) here; unbounded, one run
# held 3 GB of unreclaimable slab in 10 s.
XATTRS = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
class XattrArgs(ctypes.Structure):
    _fields_ = [("value", ctypes.c_uint64), ("size", ctypes.c_uint32), ("flags", ctypes.c_uint32)]
value = b"v" * 60000
buf = ctypes.create_string_buffer(value)
args = XattrArgs(ctypes.addressof(buf), len(value), 0)
def by_name(path):
    os.setxattr(path, "user.a", value)
def by_fd(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.setxattr(fd, "user.a", value)
    finally:
        os.close(fd)
def by_number(path):  # setxattrat (Linux 6.13): the same number on every architecture
    if libc.syscall(ctypes.c_long(463), ctypes.c_int(-100), path.encode(), ctypes.c_uint(0), b"user.a",
                    ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args))) != 0:
        raise OSError(ctypes.get_errno(), "setxattrat")
how = {"name": by_name, "fd": by_fd, "number": by_number}[sys.argv[1] if len(sys.argv) > 1 else "name"]
stored = 0
for n in range(200):
    path = f"/work/f{n}"
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    try:
        how(path)
    except OSError as e:
        print("refused", e.errno)
        break
    stored += len(value)
print("XATTR_KB", stored // 1024, flush=True)
"""


@pytest.mark.parametrize("how", ["name", "fd", "number"])
async def test_extended_attributes_cannot_hold_kernel_memory(how: str) -> None:
    need_layer("seccomp", "no system call filter here")
    code = XATTRS.replace('sys.argv[1] if len(sys.argv) > 1 else "name"', repr(how))
    r = await run_python(code, limits=LIMITS, audit_hook=False)
    assert "XATTR_KB" in r.stdout, r.stderr
    assert int(r.stdout.split("XATTR_KB")[1].split()[0]) == 0, r.stdout


async def test_system_calls_newer_than_the_filter_are_refused() -> None:
    """A deny list names system calls; those newer than the libseccomp that built it have no name
    it knows and went through (mseal, listmount, setxattrat... on Linux 6.18). They answer ENOSYS."""
    need_layer("seccomp", "no system call filter here")
    code = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nseen = []\n"
            "for number in (457, 458, 462, 463, 469, 500, 1000):\n"
            "    libc.syscall(ctypes.c_long(number), 0, 0, 0, 0, 0, 0)\n"
            "    seen.append(ctypes.get_errno())\nprint('ERRNOS', seen)\n")
    r = await run_python(code, limits=LIMITS, audit_hook=False)
    assert "ERRNOS" in r.stdout, r.stderr
    assert r.stdout.split("ERRNOS")[1].strip() == str([38] * 7), r.stdout  # ENOSYS
