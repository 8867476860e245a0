"""Kernel memory one sandbox run can hold outside RLIMIT_AS (tierwise.sandbox, OS layer only:
no audit hook), as an attacker would take it:

- socket pairs filled both ways after asking for the largest buffers (SO_SNDBUF/SO_RCVBUF), then
  pipes after F_SETPIPE_SZ, until the run is out of descriptors: MB queued in the kernel;
- one byte of each of 16 fresh 2 MB huge pages given to each pipe with vmsplice, the pages then
  unmapped (the pipe keeps them), until out of descriptors: MB pinned;
- empty folders made in the run's tmpfs until the CPU or wall limit stops it: inodes made (the
  tmpfs `--size` counts data, not inodes; ~1 KB of kernel memory each, freed with the sandbox).

    PYTHONPATH=src python bench/sandbox_kernel_memory.py
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from tierwise.sandbox import SandboxLimits, run_python, status  # noqa: E402

BUFFERS = """
import fcntl, os, socket
held = {"sockets": 0, "pipes": 0}
ends = []
try:
    while len(ends) < 30:
        a, b = socket.socketpair()
        ends += [a, b]
        for s in (a, b):
            for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                try:
                    s.setsockopt(socket.SOL_SOCKET, option, 1 << 30)
                except OSError:
                    pass
            s.setblocking(False)
            try:
                while True:
                    held["sockets"] += s.send(b"x" * 65536)
            except BlockingIOError:
                pass
    while True:
        r, w = os.pipe()
        ends += [r, w]
        try:
            fcntl.fcntl(w, 1031, 1 << 20)
        except OSError:
            pass
        os.set_blocking(w, False)
        try:
            while True:
                held["pipes"] += os.write(w, b"x" * 65536)
        except BlockingIOError:
            pass
except OSError:
    pass
print("HELD_MB", round(sum(held.values()) / 2**20, 1), {k: round(v / 2**20, 1) for k, v in held.items()})
"""

PINNED = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
HUGE = 2 << 20
pinned, pipes = 0, []
try:
    while True:
        r, w = os.pipe()
        pipes.append((r, w))
        os.set_blocking(w, False)
        for _ in range(16):
            p = libc.mmap(None, 2 * HUGE, 3, 0x22, -1, 0)
            a = (p + HUGE - 1) & ~(HUGE - 1)
            libc.madvise(ctypes.c_void_p(a), HUGE, 14)
            ctypes.memset(a, 1, HUGE)
            n = libc.vmsplice(w, ctypes.byref(iovec(a, 1)), 1, 0)
            libc.munmap(ctypes.c_void_p(p), 2 * HUGE)
            if n != 1:
                raise OSError(ctypes.get_errno(), "vmsplice")
            pinned += HUGE
except OSError as e:
    print("PINNED_MB", pinned >> 20, "stopped:", e, flush=True)
"""

INODES = """
import os, sys
n = 0
try:
    while True:
        os.mkdir(str(n))
        n += 1
        if n % 50000 == 0:
            print("INODES", n, flush=True)
except OSError as e:
    print("INODES", n, "stopped:", e, flush=True)
"""


async def main() -> None:
    print("layers:", ", ".join(status().layers))
    limits = SandboxLimits()  # the defaults a verifier run gets
    r = await run_python(BUFFERS, limits=limits, audit_hook=False)
    print(f"kernel buffers (memory_mb={limits.memory_mb}, open_files={limits.open_files}):",
          (r.stdout.strip().splitlines() or [r.stderr.strip()[-200:]])[-1])
    r = await run_python(PINNED, limits=limits, audit_hook=False)
    print(f"pages pinned in pipes by vmsplice (memory_mb={limits.memory_mb}):",
          (r.stdout.strip().splitlines() or [r.stderr.strip()[-200:]])[-1])
    t = time.monotonic()
    r = await run_python(INODES, limits=limits, audit_hook=False)
    last = [line for line in r.stdout.splitlines() if line.startswith("INODES")][-1:]
    print(f"inodes (cpu_s={limits.cpu_s}, wall_s={limits.wall_s}): {last[0] if last else 'none'}; "
          f"ended by {r.signal or r.returncode} after {time.monotonic() - t:.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
