"""The review of sandbox13 (bench/RESULTS.md "Review of sandbox13 (session 32, review32b)"): what a hostile run, or a
local user, does to round 13's fixes and what they left. Not a test: it prints what it saw.

    PYTHONPATH=src .venv/bin/python bench/sandbox_review32b.py [--mode bwrap|weak|landlock ...] [--only NAME ...]

Modes as bench/sandbox_attack_round11.py's. Attacks: `foreign` (fcntl(F_NOTIFY) as the 32-bit `fcntl64` through
`int 0x80`, and as an x32 call, bit 30 of the number), `pipe` (`pipe2(O_NOTIFICATION_PIPE)`, the watch queue),
`locks` (the run sets RLIMIT_LOCKS to 1, then takes POSIX record locks on its own file: how many it holds), `planted`
(bwrap only: a process group of its own, as a gateway's, whose runs' cpu cgroup `tierwise-<pgid>-runs` another user
made first, 65534 here, with `cpu.shares` 262144; one run spins beside the gateway's own spin for six seconds: the run's
CPU / the gateway's).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sandbox_attack_round11 import command_line, run_attacks  # noqa: E402 (one way to pick a mode)
from bench.sandbox_spin import cpu_of, limits, plant, remove_dir, spin_beside  # noqa: E402

I386 = """
import ctypes, mmap, os
fd = os.open(os.path.dirname(os.__file__), os.O_RDONLY)
# mov eax, 221 (fcntl64); mov ebx, fd; mov ecx, 1026 (F_NOTIFY); mov edx, 1 (DN_ACCESS); int 0x80; ret
code = (b"\\xb8" + (221).to_bytes(4, "little") + b"\\xbb" + fd.to_bytes(4, "little") + b"\\xb9"
        + (1026).to_bytes(4, "little") + b"\\xba" + (1).to_bytes(4, "little") + b"\\xcd\\x80\\xc3")
m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
m.write(code)
call = ctypes.CFUNCTYPE(ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(m)))
print("fcntl64 answered", call(), flush=True)
"""
X32 = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(os.path.dirname(os.__file__), os.O_RDONLY)
print("x32 fcntl answered", libc.syscall(0x40000000 | 72, fd, 1026, 1), ctypes.get_errno(), flush=True)
"""
PIPE = """
import os
try:
    os.pipe2(0x80)
    print("notification pipe made")
except OSError as e:
    print("notification pipe refused", e.errno, e.strerror)
"""
LOCKS = """
import fcntl, os, resource
resource.setrlimit(10, (1, 1))  # RLIMIT_LOCKS
fd = os.open("f", os.O_CREAT | os.O_RDWR, 0o600)
n = 0
for k in range(1000):
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 2 * k)
    n += 1
print("RLIMIT_LOCKS", resource.getrlimit(10), "locks held", n)
"""


async def _said(code: str) -> str:
    from tierwise.sandbox import run_python

    r = await run_python(code, limits=limits(), audit_hook=False)
    return f"{r.stdout.strip()} ({r.summary()})"


async def _foreign() -> str:
    return f"i386: {await _said(I386)}; x32: {await _said(X32)}"


async def _pipe() -> str:
    return await _said(PIPE)


async def _locks() -> str:
    return await _said(LOCKS)


def _planted_gateway(said: multiprocessing.connection.Connection) -> None:
    from tierwise.sandbox import cgroup, run_python

    os.setpgid(0, 0)
    parent = cgroup._cpu_parent(os.getpid())
    assert parent is not None
    planted = os.path.join(parent, f"tierwise-{os.getpgrp()}-runs")
    os.mkdir(planted)
    try:
        plant(planted)

        async def race() -> tuple[float, float, str]:
            await run_python("pass", limits=limits())
            own, [r] = await spin_beside(1)
            return own, cpu_of(r), ", ".join(r.layers)

        said.send(asyncio.run(race()))
    finally:
        remove_dir(planted)


async def _planted() -> str:
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    gateway = multiprocessing.get_context("fork").Process(target=_planted_gateway, args=(theirs,))
    gateway.start()
    own, run, layers = await asyncio.to_thread(ours.recv)
    await asyncio.to_thread(gateway.join)
    return f"gateway {own:.2f} s CPU, the run {run:.2f} s: {run / own:.2f}x the gateway's [layers: {layers}]"


ATTACKS = {"foreign": _foreign, "pipe": _pipe, "locks": _locks, "planted": _planted}


if __name__ == "__main__":
    asyncio.run(run_attacks(*command_line(__doc__, ATTACKS), ATTACKS, bwrap_only=("planted",)))
