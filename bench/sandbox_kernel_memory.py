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

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.verifiers.kernel_memory_attacks import KERNEL_BUFFERS, PINNED_PAGES  # noqa: E402
from tierwise.sandbox import SandboxLimits, run_python, status  # noqa: E402

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
    r = await run_python(KERNEL_BUFFERS, limits=limits, audit_hook=False)
    print(f"kernel buffers (memory_mb={limits.memory_mb}, open_files={limits.open_files}):",
          (r.stdout.strip().splitlines() or [r.stderr.strip()[-200:]])[-1])
    r = await run_python(PINNED_PAGES, limits=limits, audit_hook=False)
    print(f"pages pinned in pipes by vmsplice (memory_mb={limits.memory_mb}):",
          (r.stdout.strip().splitlines() or [r.stderr.strip()[-200:]])[-1])
    t = time.monotonic()
    r = await run_python(INODES, limits=limits, audit_hook=False)
    last = [line for line in r.stdout.splitlines() if line.startswith("INODES")][-1:]
    print(f"inodes (cpu_s={limits.cpu_s}, wall_s={limits.wall_s}): {last[0] if last else 'none'}; "
          f"ended by {r.signal or r.returncode} after {time.monotonic() - t:.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
